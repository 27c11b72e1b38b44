"""The protection plugin (客户保护 / 公海): the pool as a permission, claims (one, random batch,
request and approval), assign, take back, give up, limits, protection against duplicates and other
reps, reclaim strategies in the daily job, the pool log, races, disable/enable."""
import threading

import pytest

from crm.core import access, auth, directory as org, notifications
from crm.core.errors import Conflict, CrmError, Forbidden, NotFound, ValidationFailed, Vetoed
from crm.core.jobs import all_jobs, run_due
from crm.hooks import hookimpl
from crm.plugins.protection import service

POOL_VIEW, MANAGE = "protection.pool_view", "protection.manage"


def make_team(runtime):
    """销售部 (manager: boss) with rep1, rep2 (pool reps) and outsider (a rep without the pool: the
    core's sales_rep rules, without the pool permission this plugin adds to sales_rep)."""
    people = {}
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        known = access.all_permissions(runtime)
        rep_rules = {**access.DEFAULT_ROLES["sales_rep"]["rules"], "permissions": [POOL_VIEW]}
        boss_rules = {**access.DEFAULT_ROLES["sales_manager"]["rules"], "permissions": ["recycle_bin", POOL_VIEW, MANAGE]}
        access.save_role(s, "pool_rep", {"zh_CN": "公海销售"}, rep_rules, known_permissions=known)
        access.save_role(s, "pool_manager", {"zh_CN": "公海主管"}, boss_rules, known_permissions=known)
        access.save_role(s, "plain_rep", {"zh_CN": "销售（无公海）"}, access.DEFAULT_ROLES["sales_rep"]["rules"])
        boss = org.add_user(s, "boss", "password-boss", now=now, role_names=["pool_manager"])
        dept = org.create_department(s, "销售部", manager_id=boss)
        for name, roles in (("rep1", ["pool_rep"]), ("rep2", ["pool_rep"]), ("outsider", ["plain_rep"])):
            org.add_user(s, name, "password-" + name, now=now, department_id=dept, role_names=roles, manager_id=boss)
        org.update_user(s, boss, department_id=dept)
        for name in ("boss", "rep1", "rep2", "outsider"):
            people[name] = auth.get_user(s, username=name)
    return people


@pytest.fixture
def team(runtime):
    return make_team(runtime)


def configure(runtime, **values):
    with runtime.transaction() as records:
        settings = records.singleton("system_settings")
        records.update("system_settings", settings["id"], values)


def pool_customers(runtime, *names, **values):
    with runtime.transaction() as records:
        return [records.create("customer", {"name": name, **values}) for name in names]


def owner(runtime, customer_id):
    with runtime.transaction() as records:
        return records.get("customer", customer_id)["owner_id"]


def moves(runtime, customer_id):
    with runtime.transaction() as records:
        page = records.list("pool_log", filters=[("customer_id", "eq", customer_id)], sort="at,id", limit=100)
        return [(m["action"], m["from_user_id"], m["to_user_id"], m["reason"]) for m in page.items]


def titles(runtime, user_id):
    with runtime.transaction() as records:
        return [n["title"] for n in notifications.for_user(records, user_id)]


def test_the_pool_is_seen_through_a_permission(runtime, team):
    a, b = pool_customers(runtime, "公海甲", "公海乙")
    with runtime.transaction() as records:
        records.create("customer", {"name": "outsider 的客户", "owner_id": team["outsider"]["id"]})
        assert {POOL_VIEW, MANAGE} <= set(access.all_permissions(runtime))
    with runtime.transaction(user=team["rep1"]) as records:
        assert sorted(c["name"] for c in service.pool(records).items) == ["公海乙", "公海甲"]
        assert [c["name"] for c in records.list("customer").items] == ["公海乙", "公海甲"]
    with runtime.transaction(user=team["outsider"]) as records:
        assert [c["name"] for c in records.list("customer").items] == ["outsider 的客户"]
        with pytest.raises(NotFound):
            records.get("customer", a["id"])
        with pytest.raises(Forbidden):
            service.claim(records, a["id"])


def test_claim_one_and_give_up_with_a_reason(runtime, team):
    customer, = pool_customers(runtime, "华信科技")
    rep1 = team["rep1"]["id"]
    with runtime.transaction(user=team["rep1"]) as records:
        claimed = service.claim(records, customer["id"])
        assert claimed["owner_id"] == rep1 and claimed["protection_claimed_at"] == records.now()
        assert claimed["updated_by"] == rep1                                  # the audit trail names the rep
    with runtime.transaction(user=team["rep2"]) as records, pytest.raises(Conflict, match="已不在公海"):
        service.claim(records, customer["id"])
    with runtime.transaction(user=team["rep1"]) as records:
        with pytest.raises(Conflict):
            service.claim(records, customer["id"])                            # already yours
        with pytest.raises(ValidationFailed):
            service.give_up(records, customer["id"], " ")
        with pytest.raises(Vetoed, match="放弃"):
            records.update("customer", customer["id"], {"owner_id": None})    # a plain edit is no way round the reason
    with runtime.transaction(user=team["rep2"]) as records, pytest.raises(NotFound):
        service.give_up(records, customer["id"], "不是我的")
    with runtime.transaction(user=team["rep1"]) as records:
        back = service.give_up(records, customer["id"], "客户没有需求")
        assert back["owner_id"] is None and back["protection_owned_since"] is None
    assert moves(runtime, customer["id"]) == [("claim", None, rep1, None), ("give_up", rep1, None, "客户没有需求")]


def test_pool_reps_only_claim_for_themselves_and_edit_only_what_they_own(runtime, team):
    customer, = pool_customers(runtime, "公海客户")
    with runtime.transaction(user=team["rep1"]) as records:
        with pytest.raises(Vetoed, match="先领用"):
            records.update("customer", customer["id"], {"remark": "改一下"})
        with pytest.raises(Vetoed, match="自己"):
            records.update("customer", customer["id"], {"owner_id": team["rep2"]["id"]})
        with pytest.raises(Forbidden):
            service.assign(records, customer["id"], team["rep2"]["id"])
        records.update("customer", customer["id"], {"owner_id": team["rep1"]["id"]})   # a plain claim works as a claim
    assert moves(runtime, customer["id"]) == [("claim", None, team["rep1"]["id"], None)]


def test_manager_assigns_and_takes_back(runtime, team):
    customer, = pool_customers(runtime, "指派客户")
    rep1, rep2 = team["rep1"]["id"], team["rep2"]["id"]
    with runtime.transaction(user=team["boss"]) as records:
        assert service.assign(records, customer["id"], rep1, "华东区域")["owner_id"] == rep1
        assert service.assign(records, customer["id"], rep2, "调整分工")["owner_id"] == rep2
        with pytest.raises(Conflict):
            service.assign(records, customer["id"], rep2)
        assert service.take_back(records, customer["id"], "离职交接")["owner_id"] is None
        with pytest.raises(Conflict):
            service.take_back(records, customer["id"])
    boss = team["boss"]["id"]
    with runtime.transaction() as records:
        log = records.list("pool_log", filters=[("customer_id", "eq", customer["id"])], sort="id").items
        assert {m["by_user_id"] for m in log} == {boss}
    assert moves(runtime, customer["id"]) == [("assign", None, rep1, "华东区域"), ("assign", rep1, rep2, "调整分工"),
                                              ("take_back", rep2, None, "离职交接")]
    assert any("指派客户" in t and "收回" in t for t in titles(runtime, rep2))
    assert any("指派" in t for t in titles(runtime, rep1))


def test_request_and_approval(runtime, team):
    configure(runtime, protection_claim_approval=True)
    customer, = pool_customers(runtime, "申请客户")
    rep1, rep2, boss = team["rep1"]["id"], team["rep2"]["id"], team["boss"]["id"]
    with runtime.transaction(user=team["rep1"]) as records:
        with pytest.raises(Vetoed, match="审批"):
            service.claim(records, customer["id"])
        with pytest.raises(Vetoed, match="审批"):
            service.claim_random(records, 1)
        first = service.request_claim(records, customer["id"], "老关系")
        with pytest.raises(Conflict):
            service.request_claim(records, customer["id"])
    with runtime.transaction(user=team["rep2"]) as records:
        second = service.request_claim(records, customer["id"], "我也想要")
        with pytest.raises(Forbidden):
            service.approve(records, first["id"])
        with pytest.raises((Forbidden, Vetoed)):
            records.update("pool_claim_request", second["id"], {"status": "approved"})  # only through the service
    assert any("rep1 申请领用客户「申请客户」" in t for t in titles(runtime, boss))
    with runtime.transaction(user=team["boss"]) as records:
        assert service.approve(records, first["id"], "同意")["owner_id"] == rep1
        with pytest.raises(Conflict):
            service.approve(records, first["id"])
        requests = {r["id"]: r for r in records.list("pool_claim_request").items}
    assert requests[first["id"]]["status"] == "approved" and requests[first["id"]]["decided_by"] == boss
    assert requests[second["id"]]["status"] == "rejected" and "rep1" in requests[second["id"]]["decision_note"]
    assert any("已通过" in t for t in titles(runtime, rep1)) and any("被驳回" in t for t in titles(runtime, rep2))
    assert [m[0] for m in moves(runtime, customer["id"])] == ["request", "request", "approve"]
    other, = pool_customers(runtime, "被驳回的客户")
    with runtime.transaction(user=team["rep2"]) as records:
        asked = service.request_claim(records, other["id"])
    with runtime.transaction(user=team["boss"]) as records:
        assert service.reject(records, asked["id"], "先跟进现有客户")["status"] == "rejected"
    assert owner(runtime, other["id"]) is None
    with runtime.transaction(user=team["rep2"]) as records:
        again = service.request_claim(records, other["id"], "再申请")
        assert service.cancel_request(records, again["id"])["status"] == "cancelled"


def test_a_customer_leaving_the_pool_rejects_its_pending_requests(runtime, team):
    configure(runtime, protection_claim_approval=True)
    customer, = pool_customers(runtime, "抢手客户")
    rep1, rep2 = team["rep1"]["id"], team["rep2"]["id"]
    with runtime.transaction(user=team["rep2"]) as records:
        asked = service.request_claim(records, customer["id"], "我先申请的")
    with runtime.transaction(user=team["boss"]) as records:
        service.assign(records, customer["id"], rep1, "重点客户给老销售")          # not through the request
    with runtime.transaction() as records:
        request = records.get("pool_claim_request", asked["id"])
    assert request["status"] == "rejected" and "rep1" in request["decision_note"] and request["decided_by"] is None
    assert any("被驳回" in t and "rep1" in t for t in titles(runtime, rep2))
    with runtime.transaction(user=team["boss"]) as records, pytest.raises(Conflict, match="已处理"):
        service.approve(records, asked["id"])
    assert owner(runtime, customer["id"]) == rep1


def test_limits_per_role_and_per_user(runtime, team):
    pool = pool_customers(runtime, *[f"客户{i}" for i in range(6)])
    rep1, rep2 = team["rep1"]["id"], team["rep2"]["id"]
    with runtime.transaction() as records:
        with pytest.raises(Vetoed):
            records.create("protection_limit", {"role": "pool_rep", "user_id": rep1, "max_owned": 2})
        with pytest.raises(Vetoed, match="没有角色"):
            records.create("protection_limit", {"role": "ghost", "max_owned": 2})
        records.create("protection_limit", {"role": "pool_rep", "max_owned": 2})
        records.create("protection_limit", {"user_id": rep2, "max_owned": 3})
    with runtime.transaction(user=team["rep1"]) as records:
        service.claim(records, pool[0]["id"])
        service.claim(records, pool[1]["id"])
        with pytest.raises(Vetoed, match="上限 2") as refused:
            service.claim(records, pool[2]["id"])
        assert "rep1" in refused.value.message
        with pytest.raises(Vetoed, match="上限"):
            records.create("customer", {"name": "自己录入", "owner_id": rep1})
    with runtime.transaction(user=team["boss"]) as records, pytest.raises(Vetoed, match="上限"):
        service.assign(records, pool[2]["id"], rep1)                          # limits hold for assignments too
    with runtime.transaction(user=team["rep2"]) as records:                  # the user's own row wins over the role
        for customer in pool[2:5]:
            service.claim(records, customer["id"])
        with pytest.raises(Vetoed):
            service.claim(records, pool[5]["id"])
    with runtime.transaction() as records:                                   # the system (imports, jobs) is not limited
        records.update("customer", pool[5]["id"], {"owner_id": rep1})


def test_protected_count_is_limited_when_protection_is_on(runtime, team):
    configure(runtime, protection_enabled=True, protection_days=30)
    pool = pool_customers(runtime, "甲", "乙", "丙")
    with runtime.transaction() as records:
        records.create("protection_limit", {"role": "pool_rep", "max_protected": 1})
    with runtime.transaction(user=team["rep1"]) as records:
        service.claim(records, pool[0]["id"])
        with pytest.raises(Vetoed, match="保护的客户已达上限"):
            service.claim(records, pool[1]["id"])


def test_random_batch_claims_respect_batch_size_and_limits(runtime, team):
    configure(runtime, protection_batch_size=4)
    pool_customers(runtime, *[f"批量{i}" for i in range(12)])
    with runtime.transaction() as records:
        records.create("protection_limit", {"role": "pool_rep", "max_owned": 6})
    with runtime.transaction(user=team["rep1"]) as records:
        first = service.claim_random(records, 10)                             # capped by the batch size
        assert len(first) == 4 and {c["owner_id"] for c in first} == {team["rep1"]["id"]}
        second = service.claim_random(records, 4)                             # capped by the limit
        assert len(second) == 2
        with pytest.raises(Vetoed, match="上限"):
            service.claim_random(records, 1)
        with pytest.raises(ValidationFailed):
            service.claim_random(records, 0)
    with runtime.transaction() as records:
        mine = records.list("customer", filters=[("owner_id", "eq", team["rep1"]["id"])]).items
        assert len(mine) == 6
        assert {m["action"] for m in records.list("pool_log", limit=100).items} == {"batch_claim"}


def test_limits_hold_under_concurrent_batch_claims(runtime, team):
    pool_customers(runtime, *[f"并发{i}" for i in range(20)])
    with runtime.transaction() as records:
        records.create("protection_limit", {"role": "pool_rep", "max_owned": 5})
    barrier, got, errors = threading.Barrier(4), [], []

    def batch(who):
        barrier.wait(timeout=10)
        try:
            with runtime.transaction(user=team[who]) as records:
                got.extend((who, c["id"]) for c in service.claim_random(records, 4))
        except CrmError as e:
            errors.append(e)

    threads = [threading.Thread(target=batch, args=(who,)) for who in ("rep1", "rep1", "rep2", "rep2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(e, Vetoed) for e in errors)
    assert len({cid for _, cid in got}) == len(got)                           # no customer given twice
    with runtime.transaction() as records:
        for who in ("rep1", "rep2"):
            owned = records.list("customer", filters=[("owner_id", "eq", team[who]["id"])]).items
            assert len(owned) == 5 == sum(1 for w, _ in got if w == who)


class Racer:
    """Holds every claim after its checks, until both claims got there: a real race."""

    def __init__(self):
        self.barrier = None

    @hookimpl
    def crm_before_update(self, ctx, entity, old, changes):
        if self.barrier is not None and entity.name == "customer" and "owner_id" in changes:
            self.barrier.wait(timeout=10)


def test_a_claim_racing_another_gives_the_customer_to_exactly_one_rep(make_runtime, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite runs one writing transaction at a time: claims cannot overlap")
    racer = Racer()
    runtime = make_runtime(plugins=[("racer", racer)])
    team = make_team(runtime)
    pool = pool_customers(runtime, *[f"抢单{i}" for i in range(3)])
    for customer in pool:
        racer.barrier = threading.Barrier(2)
        outcomes = {}

        def claim(who):
            try:
                with runtime.transaction(user=team[who]) as records:
                    service.claim(records, customer["id"])
                outcomes[who] = "won"
            except CrmError as e:
                outcomes[who] = e

        threads = [threading.Thread(target=claim, args=(who,)) for who in ("rep1", "rep2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        racer.barrier = None
        winners = [who for who, outcome in outcomes.items() if outcome == "won"]
        assert len(winners) == 1, outcomes
        loser = ({"rep1", "rep2"} - set(winners)).pop()
        assert isinstance(outcomes[loser], Conflict) and "其他人" in outcomes[loser].message
        assert owner(runtime, customer["id"]) == team[winners[0]]["id"]
        assert [m[0] for m in moves(runtime, customer["id"])] == ["claim"]


def test_protection_stops_duplicates_and_other_reps(runtime, team, clock):
    configure(runtime, protection_enabled=True, protection_days=30)
    customer, = pool_customers(runtime, "华信科技")
    rep1, rep2 = team["rep1"]["id"], team["rep2"]["id"]
    with runtime.transaction(user=team["rep1"]) as records:
        assert service.claim(records, customer["id"])["protection_until"].isoformat() == "2026-12-23"
    with runtime.transaction(user=team["rep2"]) as records, pytest.raises(Vetoed, match="rep1") as duplicate:
        records.create("customer", {"name": "华信科技", "owner_id": rep2})
    assert duplicate.value.fields == {"name": duplicate.value.message} and "2026-12-23" in duplicate.value.message
    with runtime.transaction() as records:
        access.save_role(records.session, "all_rep", {"zh_CN": "全部客户"}, {"entities": {"customer": {"read": "all", "update": "all"}}})
        org.update_user(records.session, rep2, role_names=["pool_rep", "all_rep"])
        rep2_user = auth.get_user(records.session, user_id=rep2)
    with runtime.transaction(user=rep2_user) as records, pytest.raises(Vetoed, match="受保护"):
        records.update("customer", customer["id"], {"owner_id": rep2})         # another rep cannot take it
    with runtime.transaction(user=team["boss"]) as records:                   # the owner's manager can
        service.assign(records, customer["id"], rep2)
        service.assign(records, customer["id"], rep1)
    clock.advance(days=31)                                                    # protection over
    with runtime.transaction(user=rep2_user) as records:
        records.create("customer", {"name": "华信科技", "owner_id": rep2})


def test_protection_ending_is_reminded_once(runtime, team, clock):
    configure(runtime, protection_enabled=True, protection_days=10, protection_remind_days=3)
    customer, = pool_customers(runtime, "提醒客户")
    with runtime.transaction(user=team["rep1"]) as records:
        service.claim(records, customer["id"])
    clock.advance(days=6)
    list(run_due(runtime))
    assert not any("保护" in t for t in titles(runtime, team["rep1"]["id"]))
    clock.advance(days=1)                                                     # 12-03 is 3 days before the end
    list(run_due(runtime))
    clock.advance(days=1)
    list(run_due(runtime))
    assert [t for t in titles(runtime, team["rep1"]["id"]) if "保护" in t] == ["客户「提醒客户」的保护将于 2026-12-03 到期"]


def test_reclaim_claimed_but_not_contacted(runtime, team, clock):
    configure(runtime, protection_reclaim_claimed=True, protection_reclaim_claimed_days=7, protection_reclaim_remind_days=2)
    silent, called = pool_customers(runtime, "没联系", "联系了")
    rep1 = team["rep1"]["id"]
    with runtime.transaction(user=team["rep1"]) as records:
        service.claim(records, silent["id"])
        service.claim(records, called["id"])
    clock.advance(days=2)
    with runtime.transaction(user=team["rep1"]) as records:
        records.create("follow_up", {"customer_id": called["id"], "subject": "电话", "occurred_at": "2026-11-25T10:00:00"})
    clock.advance(days=3)                                                     # 11-28: reclaim on 12-01, 3 days away
    list(run_due(runtime))
    assert titles(runtime, rep1) == []
    clock.advance(days=1)                                                     # 11-29: within 2 days
    list(run_due(runtime))
    assert titles(runtime, rep1) == ["客户「没联系」将于 2026-12-01 因“领用未联系”收回公海"]
    clock.advance(days=2)                                                     # 12-01: 7 whole days without contact
    assert "'reclaimed': 1" in dict(run_due(runtime))["protection.daily"]
    assert dict(run_due(runtime))["protection.daily"] == "already ran today"
    with runtime.transaction() as records:
        assert service.run_daily(records)["reclaimed"] == 0                   # the job running twice reclaims once
    clock.advance(days=1)
    list(run_due(runtime))
    assert owner(runtime, silent["id"]) is None and owner(runtime, called["id"]) == rep1
    assert moves(runtime, silent["id"])[-1] == ("auto_reclaim", rep1, None, "领用未联系（claimed）")
    assert [m[0] for m in moves(runtime, silent["id"])] == ["claim", "auto_reclaim"]
    assert any("没联系" in t and "自动回收" in t for t in titles(runtime, rep1))


def test_reclaim_no_follow_up_no_deal_and_levels(runtime, team, clock):
    configure(runtime, protection_reclaim_idle=True, protection_reclaim_idle_days=30,
              protection_reclaim_no_deal=True, protection_reclaim_no_deal_days=60, protection_reclaim_levels=["C", "D"],
              protection_reclaim_remind_days=0)
    rep1 = team["rep1"]["id"]
    with runtime.transaction(user=team["rep1"]) as records:
        idle = records.create("customer", {"name": "不跟进", "owner_id": rep1, "level": "C"})
        key = records.create("customer", {"name": "重点客户", "owner_id": rep1, "level": "A"})   # level A: never reclaimed
        busy = records.create("customer", {"name": "常跟进", "owner_id": rep1, "level": "C"})
        dealt = records.create("customer", {"name": "成交了", "owner_id": rep1, "level": "D"})
    for day in range(0, 64, 20):
        with runtime.transaction(user=team["rep1"]) as records:
            for customer in (busy, dealt):
                records.create("follow_up", {"customer_id": customer["id"], "subject": "跟进", "occurred_at": records.now().isoformat()})
        if day == 20:
            with runtime.transaction() as records:
                records.set_derived("customer", dealt["id"], {"last_deal_on": records.today(), "deal_count": 1})
        clock.advance(days=20)
        list(run_due(runtime))
        if day == 20:                                                         # 11-23 + 40 days: idle for over 30
            assert owner(runtime, idle["id"]) is None and owner(runtime, busy["id"]) == rep1
    # 80 days: 常跟进 had no deal within 60 days of being taken over; 成交了 had one
    assert owner(runtime, busy["id"]) is None and owner(runtime, dealt["id"]) == rep1 and owner(runtime, key["id"]) == rep1
    assert moves(runtime, idle["id"])[-1][3] == "间隔未联系（idle）" and moves(runtime, busy["id"])[-1][3] == "跟进未成功（no_deal）"


def test_strategies_switched_off_reclaim_nothing(runtime, team, clock):
    configure(runtime, protection_enabled=True, protection_days=5, protection_reclaim_claimed_days=1,
              protection_reclaim_idle_days=1, protection_reclaim_no_deal_days=1, protection_reclaim_remind_days=3)
    customer, = pool_customers(runtime, "无人跟进")
    with runtime.transaction(user=team["rep1"]) as records:
        service.claim(records, customer["id"])
    for _ in range(3):
        clock.advance(days=30)
        list(run_due(runtime))
    assert owner(runtime, customer["id"]) == team["rep1"]["id"]                # every strategy is off by default
    assert not any("收回公海" in t for t in titles(runtime, team["rep1"]["id"]))
    configure(runtime, protection_reclaim_idle=True)                          # one switched on: the next run reclaims
    clock.advance(days=1)
    list(run_due(runtime))
    assert owner(runtime, customer["id"]) is None and moves(runtime, customer["id"])[-1][3] == "间隔未联系（idle）"


def test_reclaim_when_protection_expired(runtime, team, clock):
    configure(runtime, protection_enabled=True, protection_days=5, protection_reclaim_expired=True, protection_reclaim_remind_days=1)
    customer, = pool_customers(runtime, "过期客户")
    with runtime.transaction(user=team["rep1"]) as records:
        service.claim(records, customer["id"])                                # protected until 11-28
    clock.advance(days=5)
    list(run_due(runtime))
    assert owner(runtime, customer["id"]) == team["rep1"]["id"]
    assert "客户「过期客户」将于 2026-11-29 因“保护过期”收回公海" in titles(runtime, team["rep1"]["id"])
    clock.advance(days=1)
    list(run_due(runtime))
    with runtime.transaction() as records:
        back = records.get("customer", customer["id"])
    assert back["owner_id"] is None and back["protection_until"] is None
    assert moves(runtime, customer["id"])[-1][0] == "auto_reclaim"


def test_log_and_requests_are_written_by_the_system_only(runtime, team):
    customer, = pool_customers(runtime, "日志客户")
    with runtime.transaction(user=team["rep1"]) as records:
        service.claim(records, customer["id"])
    with runtime.transaction() as records:
        admin = auth.get_user(records.session, user_id=auth.create_user(records.session, "admin", "password-admin", admin=True,
                                                                        now=records.now()))
        entry = records.list("pool_log").items[0]
    with runtime.transaction(user=admin) as records:
        with pytest.raises(Vetoed):
            records.create("pool_log", {"customer_id": customer["id"], "action": "claim", "at": "2026-11-23T10:00:00"})
        with pytest.raises(Vetoed):
            records.update("pool_log", entry["id"], {"reason": "改记录"})
        with pytest.raises(Vetoed):
            records.delete("pool_log", entry["id"])


def test_disabling_and_enabling_the_plugin_keeps_its_data(make_runtime, clock):
    on = make_runtime()
    team = make_team(on)
    configure(on, protection_enabled=True)
    customer, pooled = pool_customers(on, "保留客户", "公海客户")
    with on.transaction(user=team["rep1"]) as records:
        service.claim(records, customer["id"])
    with on.transaction() as records:
        records.create("protection_limit", {"role": "pool_rep", "max_owned": 10})
    off = make_runtime(**{"crm.plugins.disabled": "protection"})
    for name in ("pool_log", "pool_claim_request", "protection_limit"):
        assert name not in off.metadata.entities
    assert not any(f.startswith("protection_") for f in off.metadata["customer"].fields)
    assert POOL_VIEW not in access.all_permissions(off) and not any(j.name.startswith("protection.") for j in all_jobs(off))
    with off.transaction(user=team["rep1"]) as records:
        assert [c["name"] for c in records.list("customer").items] == ["保留客户"]   # the pool grant is gone
        assert not any(k.startswith("protection_") for k in records.get("customer", customer["id"]))
        with pytest.raises(NotFound):
            records.get("customer", pooled["id"])
    on_again = make_runtime()
    with on_again.transaction() as records:
        assert records.get("customer", customer["id"])["protection_until"].isoformat() == "2026-12-23"
        assert len(records.list("protection_limit").items) == 1
    assert moves(on_again, customer["id"]) == [("claim", None, team["rep1"]["id"], None)]


# --- web pages -------------------------------------------------------------------------------------

class Site:
    """A browser-like WebTest client (cookies, the CSRF token of the pages)."""

    def __init__(self, runtime, username):
        import re
        from webtest import TestApp
        from crm.core.app import make_app
        self.app = TestApp(make_app(runtime))
        form = self.app.get("/login").forms["login-form"]
        form["username"], form["password"] = username, "password-" + username
        form.submit(status=302)
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', self.app.get("/app").text).group(1)

    def post(self, url, params=None, status=302):
        return self.app.post(url, {**(params or {}), "csrf_token": self.csrf}, status=status)


def test_pages_claim_from_the_pool_give_up_and_the_duplicate_warning(runtime, team):
    configure(runtime, protection_enabled=True)
    customer, = pool_customers(runtime, "网页客户")
    rep1 = Site(runtime, "rep1")
    pool = rep1.app.get("/app/protection/pool")
    assert "网页客户" in pool.html.select_one("#pool-table").text
    detail = rep1.post(f"/app/protection/customers/{customer['id']}/claim", {"next": "/app/protection/pool"}).follow()
    assert "已领用客户「网页客户」" in detail.text
    actions = [a.get_text(strip=True) for a in detail.html.select(".page-head .actions .button")]
    assert "放弃" in actions and "领用" not in actions
    tabs = [t.get_text(" ", strip=True) for t in detail.html.select('[role="tab"]')]
    assert any(t.startswith("公海记录") for t in tabs)
    assert "领用" in detail.html.select_one('[data-related="pool_log"]').text
    assert owner(runtime, customer["id"]) == team["rep1"]["id"]
    rep2 = Site(runtime, "rep2")                                              # 防撞单 in the form
    refused = rep2.app.post("/app/customer/new", {"name": "网页客户", "csrf_token": rep2.csrf}, status=422)
    assert "由 rep1 负责" in refused.text
    form = rep1.app.get(f"/app/protection/customers/{customer['id']}/give_up")
    assert form.html.select_one("#protection-reason").get("required") is not None
    rep1.post(f"/app/protection/customers/{customer['id']}/give_up", {"reason": ""}).follow()
    assert owner(runtime, customer["id"]) == team["rep1"]["id"]              # refused without a reason
    rep1.post(f"/app/protection/customers/{customer['id']}/give_up", {"reason": "没有预算"})
    assert owner(runtime, customer["id"]) is None
    batch = rep2.post("/app/protection/pool/batch", {"count": "3"}).follow()
    assert "已领用 1 个客户：网页客户" in batch.text


def test_pages_assign_and_approve_for_managers(runtime, team):
    configure(runtime, protection_claim_approval=True)
    customer, other = pool_customers(runtime, "指派的客户", "申请的客户")
    boss = Site(runtime, "boss")
    page = boss.app.get(f"/app/customer/{customer['id']}")
    assert {"领用", "指派"} <= {a.get_text(strip=True) for a in page.html.select(".page-head .actions .button")}
    boss.post(f"/app/protection/customers/{customer['id']}/assign", {"user_id": str(team["rep1"]["id"]), "reason": "新人带教"})
    assert owner(runtime, customer["id"]) == team["rep1"]["id"]
    rep2 = Site(runtime, "rep2")
    pool = rep2.app.get("/app/protection/pool")
    assert pool.html.select_one("#pool-batch-form") is None and "申请领用" in pool.text
    rep2.post(f"/app/protection/customers/{other['id']}/request", {"reason": "老客户介绍"})
    with runtime.transaction() as records:
        asked = records.list("pool_claim_request").items[0]
    page = boss.app.get(f"/app/pool_claim_request/{asked['id']}")
    assert {"审批通过", "驳回"} <= {a.get_text(strip=True) for a in page.html.select(".page-head .actions .button")}
    boss.post(f"/app/protection/requests/{asked['id']}/approve")
    assert owner(runtime, other["id"]) == team["rep2"]["id"]


# --- in a real browser (Debian's Chromium through Playwright, as tests/test_browser.py) ---------------

def test_browser_claim_from_the_pool_and_the_duplicate_warning(tmp_path):
    from crm.core.app import make_app
    from tests import browser as b
    sync_api = b.playwright_api()
    runtime = b.sqlite_runtime(tmp_path)
    try:
        team = make_team(runtime)
        configure(runtime, protection_enabled=True)
        pool_customers(runtime, "浏览器公海客户")
        with b.served(make_app(runtime)) as base, b.chromium(sync_api) as browser:
            for who in ("rep1", "rep2"):
                errors = []
                page = b.new_page(browser, errors)
                b.login(page, base, who, "password-" + who)
                if who == "rep1":                                          # claim from the pool page
                    with page.expect_navigation():
                        page.click(".sidebar a:has-text('公海客户')")
                    sync_api.expect(page.locator("#pool-table")).to_contain_text("浏览器公海客户")
                    with page.expect_navigation():
                        page.click("#pool-table button:has-text('领用')")
                    sync_api.expect(page.locator(".flashes")).to_contain_text("已领用客户「浏览器公海客户」")
                    sync_api.expect(page.locator("h1")).to_have_text("浏览器公海客户")
                    sync_api.expect(page.locator("[id='action-protection.give_up']")).to_be_visible()
                    page.click("[role=tab]:has-text('公海记录')")
                    sync_api.expect(page.locator("[data-related='pool_log']")).to_contain_text("领用")
                else:                                                      # 防撞单: the duplicate is refused
                    page.goto(base + "/app/customer/new")
                    page.fill("#f-name", "浏览器公海客户")
                    page.click("button:has-text('保存') >> nth=0")
                    sync_api.expect(page.locator("body")).to_contain_text("由 rep1 负责，受保护至")
                page.context.close()
                assert not errors, f"JavaScript errors: {errors}"
        with runtime.transaction() as records:
            assert [(c["name"], c["owner_id"]) for c in records.list("customer").items] == [("浏览器公海客户", team["rep1"]["id"])]
    finally:
        runtime.dispose()
