"""Access: a permission matrix over a department tree, roles, sharing, field permissions, hooks."""
import pytest

from crm.core import access, directory as org
from crm.core.errors import BadRequest, Forbidden, NotFound, ValidationFailed
from crm.hooks import hookimpl

EVERYONE = ["gm", "bj_mgr", "lead3", "rep1", "rep2", "rep3", "sh_rep", "viewer", "nobody"]


@pytest.fixture
def org_chart(make_runtime):
    """集团 → 北京分公司 → {销售一组, 销售二组}; 集团 → 上海分公司. Two customers per sales person."""
    rt = make_runtime()
    ids, customers = {}, {}
    with rt.transaction() as records:
        s, now = records.session, records.now()
        group = org.create_department(s, "集团")
        bj = org.create_department(s, "北京分公司", group)
        team1 = org.create_department(s, "销售一组", bj)
        team2 = org.create_department(s, "销售二组", bj)
        sh = org.create_department(s, "上海分公司", group)

        def user(name, dept, roles, manager=None):
            ids[name] = org.add_user(s, name, "password-" + name, now=now, department_id=dept, role_names=roles,
                                     manager_id=ids.get(manager))
        user("gm", group, ["sales_manager"])
        user("bj_mgr", bj, ["sales_manager"])
        user("lead3", team1, ["sales_rep"])
        user("rep1", team1, ["sales_rep"], manager="lead3")
        user("rep2", team1, ["sales_rep"])
        user("rep3", team2, ["sales_rep"])
        user("sh_rep", sh, ["sales_rep"])
        user("viewer", sh, ["viewer"])
        user("nobody", sh, [])
        s.execute(org.departments.update().where(org.departments.c.id == team2).values(manager_id=ids["rep3"]))
        for owner in ("lead3", "rep1", "rep2", "rep3", "sh_rep"):
            for n in (1, 2):
                c = records.create("customer", {"name": f"{owner}的客户{n}", "owner_id": ids[owner], "credit_limit": 1000 * n})
                customers[c["id"]] = owner
    return rt, ids, customers


def as_user(rt, ids, name):
    from crm.core import auth
    with rt.transaction() as records:
        user = auth.get_user(records.session, username=name)
    return rt.transaction(user=user)


def expected_owners(name):
    team1 = {"lead3", "rep1", "rep2"}
    return {
        "gm": team1 | {"rep3", "sh_rep"},
        "bj_mgr": team1 | {"rep3"},
        "lead3": {"lead3", "rep1"},        # own + direct report
        "rep1": {"rep1"}, "rep2": {"rep2"},
        "rep3": {"rep3"},                  # manages 销售二组: sees its people (only rep3 owns there)
        "sh_rep": {"sh_rep"},
        "viewer": team1 | {"rep3", "sh_rep"},
        "nobody": set(),
    }[name]


def test_permission_matrix(org_chart):
    rt, ids, customers = org_chart
    denied = expected_denied = 0
    for name in EVERYONE:
        allowed = {cid for cid, owner in customers.items() if owner in expected_owners(name)}
        with as_user(rt, ids, name) as records:
            if name == "nobody":
                with pytest.raises(Forbidden):
                    records.list("customer")
            else:
                listed = {c["id"] for c in records.list("customer", limit=500).items}
                assert listed == allowed, name
                found = {c["id"] for c in records.list("customer", q="的客户", limit=500).items}
                assert found == allowed, name
            for cid in customers:
                if cid in allowed:
                    assert records.get("customer", cid)["id"] == cid
                    continue
                expected_denied += 3
                for attempt in (lambda: records.get("customer", cid),
                                lambda: records.update("customer", cid, {"remark": "x"}),
                                lambda: records.delete("customer", cid)):
                    with pytest.raises(NotFound):
                        attempt()
                    denied += 1
    assert denied == expected_denied > 0


def test_update_scope_narrower_than_read_is_forbidden(org_chart):
    rt, ids, customers = org_chart
    theirs = next(cid for cid, owner in customers.items() if owner == "rep1")
    with as_user(rt, ids, "viewer") as records:
        assert records.get("customer", theirs)
        with pytest.raises(Forbidden):
            records.update("customer", theirs, {"remark": "x"})
        with pytest.raises(Forbidden):
            records.create("customer", {"name": "新客户"})
    with as_user(rt, ids, "lead3") as records:   # leads its report: may edit the report's customers
        assert records.update("customer", theirs, {"remark": "主管备注"})["remark"] == "主管备注"


def test_sharing_read_and_edit(org_chart):
    rt, ids, customers = org_chart
    mine = next(cid for cid, owner in customers.items() if owner == "rep1")
    with rt.transaction() as records:
        access.share(records.session, "customer", mine, user_id=ids["sh_rep"], access="read", now=records.now())
    with as_user(rt, ids, "sh_rep") as records:
        assert records.get("customer", mine)["name"] == "rep1的客户1"
        with pytest.raises(Forbidden):
            records.update("customer", mine, {"remark": "x"})
    with rt.transaction() as records:
        access.share(records.session, "customer", mine, user_id=ids["sh_rep"], access="edit", now=records.now())
        assert [s["access"] for s in access.shares_of(records.session, "customer", mine)] == ["edit"]
    with as_user(rt, ids, "sh_rep") as records:
        assert records.update("customer", mine, {"remark": "共享编辑"})["remark"] == "共享编辑"
    with rt.transaction() as records:
        for share in access.shares_of(records.session, "customer", mine):
            access.unshare(records.session, share["id"])
    with as_user(rt, ids, "sh_rep") as records, pytest.raises(NotFound):
        records.get("customer", mine)


def test_hidden_and_read_only_fields(org_chart):
    rt, ids, customers = org_chart
    with rt.transaction() as records:
        rules = {"entities": {"*": {"read": "all"}, "customer": {"read": "own", "create": "all", "update": "own"}},
                 "fields": {"customer": {"credit_limit": "hidden", "level": "readonly"}}}
        access.save_role(records.session, "restricted", {"zh_CN": "受限"}, rules, known_entities=rt.metadata.entities)
        org.update_user(records.session, ids["rep2"], role_names=["restricted"])
    mine = next(cid for cid, owner in customers.items() if owner == "rep2")
    with as_user(rt, ids, "rep2") as records:
        assert "credit_limit" not in records.get("customer", mine)
        assert all("credit_limit" not in c for c in records.list("customer").items)
        with pytest.raises(BadRequest):
            records.list("customer", filters=[("credit_limit", "gt", "0")])
        with pytest.raises(BadRequest):
            records.list("customer", sort="-credit_limit")
        with pytest.raises(ValidationFailed) as failed:
            records.update("customer", mine, {"credit_limit": 5, "level": "A"})
        assert set(failed.value.fields) == {"credit_limit", "level"}
        records.update("customer", mine, {"remark": "ok"})
        history = records.history("customer", mine)
        assert all(h["field"] != "credit_limit" and "credit_limit" not in (h["new_value"] or {}) for h in history)
    with rt.transaction() as records:   # the hidden value was not touched
        assert records.get("customer", mine)["credit_limit"] == 1000


def test_recycle_bin_needs_the_permission(org_chart):
    rt, ids, customers = org_chart
    mine = next(cid for cid, owner in customers.items() if owner == "rep1")
    with as_user(rt, ids, "rep1") as records:
        records.delete("customer", mine)
        with pytest.raises(Forbidden):
            records.trash()
    with as_user(rt, ids, "sh_rep") as records, pytest.raises(Forbidden):
        records.trash()
    with as_user(rt, ids, "bj_mgr") as records:
        assert [t["record_id"] for t in records.trash()] == [mine]
        records.restore("customer", mine)
    with as_user(rt, ids, "rep1") as records:
        assert records.get("customer", mine)


def test_effective_access_explains_the_granting_role(org_chart):
    rt, ids, _ = org_chart
    with as_user(rt, ids, "bj_mgr") as records:
        explained = records.access.explain("customer")
    rows = {r["action"]: r for r in explained["actions"]}
    assert rows["read"] == {"action": "read", "scope": "department_tree", "granted_by": ["sales_manager"]}
    assert explained["fields"]["credit_limit"] == "editable"


def test_role_rules_are_validated(runtime):
    problems = access.validate_rules({"entities": {"customer": {"read": "everything", "fly": "all"}, "ghost": {}},
                                      "fields": {"customer": {"name": "secret"}}}, known_entities=runtime.metadata.entities)
    assert set(problems) == {"/entities/customer/read", "/entities/customer/fly", "/entities/ghost", "/fields/customer/name"}


class PoolPlugin:
    """Customers without an owner (the pool) visible to holders of a special permission."""

    @hookimpl
    def crm_permissions(self):
        return [{"name": "pool.view", "label": {"zh_CN": "查看公海", "en": "See the pool"}}]

    @hookimpl
    def crm_access_grants(self, ctx, entity, action, user):
        if entity.name == "customer" and action == "read" and ctx.access.has("pool.view"):
            return [entity.table.c.owner_id.is_(None)]
        return []

    @hookimpl
    def crm_access_restrictions(self, ctx, entity, action, user):
        if entity.name == "customer":
            return [entity.table.c.name.not_like("%机密%")]
        return []


def test_plugin_grants_and_restrictions(make_runtime):
    rt = make_runtime(plugins=[("pool", PoolPlugin())], enabled="pool")   # no other plugin's grants (protection's pool)
    assert "pool.view" in access.all_permissions(rt)
    with rt.transaction() as records:
        s = records.session
        pool_role = {"entities": {"customer": {"read": "own", "create": "all"}}, "permissions": ["pool.view"]}
        access.save_role(s, "pool_rep", {"zh_CN": "公海销售"}, pool_role, known_permissions=access.all_permissions(rt))
        rep = org.add_user(s, "rep", "password-rep", now=records.now(), role_names=["pool_rep"])
        other = org.add_user(s, "other", "password-other", now=records.now(), role_names=["sales_rep"])
        pooled = records.create("customer", {"name": "公海客户"})
        records.create("customer", {"name": "机密客户"})
        records.create("customer", {"name": "别人的客户", "owner_id": other})
        assert len(records.list("customer").items) == 2      # the restriction applies to administrators too
    from crm.core import auth
    with rt.transaction() as records:
        user_rep, user_other = auth.get_user(records.session, user_id=rep), auth.get_user(records.session, user_id=other)
    with rt.transaction(user=user_rep) as records:
        assert [c["name"] for c in records.list("customer").items] == ["公海客户"]
    with rt.transaction(user=user_other) as records:
        assert [c["name"] for c in records.list("customer").items] == ["别人的客户"]
        with pytest.raises(NotFound):
            records.get("customer", pooled["id"])


def test_manager_chains_and_department_moves_cannot_loop_and_a_move_changes_who_is_reached(org_chart):
    rt, ids, customers = org_chart
    with rt.transaction() as records:
        s = records.session
        with pytest.raises(ValidationFailed) as loop:
            org.update_user(s, ids["lead3"], manager_id=ids["rep1"])          # rep1 reports to lead3
        assert loop.value.fields == {"manager_id": "cycle"}
        with pytest.raises(ValidationFailed):
            org.update_user(s, ids["rep1"], manager_id=ids["rep1"])
        depts = {d["name"]: d["id"] for d in org.department_tree(s)}
        with pytest.raises(ValidationFailed) as moved:
            org.update_department(s, depts["北京分公司"], parent_id=depts["销售一组"])
        assert moved.value.fields == {"parent_id": "cycle"}
        with pytest.raises(ValidationFailed) as taken:
            org.create_department(s, "销售一组", depts["北京分公司"])
        assert taken.value.fields == {"name": "taken"}
        org.update_department(s, depts["销售二组"], parent_id=depts["上海分公司"])
    rep3_customers = {cid for cid, owner in customers.items() if owner == "rep3"}
    with as_user(rt, ids, "bj_mgr") as records:     # 销售二组 left 北京分公司: out of reach now
        assert not rep3_customers & {c["id"] for c in records.list("customer", limit=500).items}
    with as_user(rt, ids, "gm") as records:         # still under 集团
        assert rep3_customers <= {c["id"] for c in records.list("customer", limit=500).items}


def test_sharing_service_checks_who_may_share_and_writes_the_history(org_chart):
    from crm.core import sharing
    rt, ids, customers = org_chart
    theirs = next(cid for cid, owner in customers.items() if owner == "rep1")
    with as_user(rt, ids, "rep2") as records, pytest.raises(NotFound):       # cannot see it
        sharing.share(records, "customer", theirs, user_id=ids["rep2"], access_level="edit")
    with as_user(rt, ids, "viewer") as records, pytest.raises(Forbidden):    # sees it, may not change it
        sharing.list_shares(records, "customer", theirs)
    with as_user(rt, ids, "lead3") as records:                                # rep1's manager may
        departments = {d["name"]: d["id"] for d in org.department_tree(records.session)}
        sharing.share(records, "customer", theirs, department_id=departments["上海分公司"], access_level="read")
        with pytest.raises(ValidationFailed):
            sharing.share(records, "customer", theirs, user_id=999999)
        assert [(s["whom"], s["access"]) for s in sharing.list_shares(records, "customer", theirs)] == [("上海分公司", "read")]
    with as_user(rt, ids, "sh_rep") as records:
        assert records.get("customer", theirs)
    with as_user(rt, ids, "rep1") as records:
        notes = [(h["action"], h["note"]) for h in records.history("customer", theirs) if h["action"] == "share"]
        assert notes == [("share", "上海分公司: read")]
        share_id = sharing.list_shares(records, "customer", theirs)[0]["id"]
        sharing.revoke(records, "customer", theirs, share_id)
    with as_user(rt, ids, "sh_rep") as records, pytest.raises(NotFound):
        records.get("customer", theirs)


def test_a_scope_of_many_people_and_many_shares(make_runtime):
    """A 分公司 head reaching 40 people, and a rep with 40 records shared with her: lists longer
    than access.BOUND_IDS are written into the SQL differently; they reach exactly the same."""
    rt = make_runtime()
    assert access.BOUND_IDS < 40
    with rt.transaction() as records:
        s, now = records.session, records.now()
        branch = org.create_department(s, "华东分公司")
        team = org.create_department(s, "销售组", branch)
        other = org.create_department(s, "华南分公司")
        head = org.add_user(s, "head", "password-head", now=now, department_id=branch, role_names=["sales_manager"])
        s.execute(org.departments.update().where(org.departments.c.id == branch).values(manager_id=head))
        reps = [org.add_user(s, f"rep{n}", "password-rep", now=now, department_id=team, role_names=["sales_rep"])
                for n in range(40)]
        outsider = org.add_user(s, "outsider", "password-out", now=now, department_id=other, role_names=["sales_rep"])
        inside = {records.create("customer", {"name": f"华东客户{n}", "owner_id": rep})["id"] for n, rep in enumerate(reps)}
        outside = [records.create("customer", {"name": f"华南客户{n}", "owner_id": outsider})["id"] for n in range(45)]
        for record_id in outside[:41]:
            access.share(s, "customer", record_id, user_id=reps[0], access="read", now=now)
    with as_user(rt, {}, "head") as records:
        assert len(records.access.people_for("department_tree")) == 41
        seen = {r["id"] for r in records.list("customer", limit=500).items}
        assert seen == inside
        with pytest.raises(NotFound):
            records.get("customer", outside[0])
    with as_user(rt, {}, "rep0") as records:
        seen = {r["id"] for r in records.list("customer", limit=500).items}
        mine = {r["id"] for r in records.list("customer", limit=500, filters=[("owner_id", "eq", str(reps[0]))]).items}
        assert seen == mine | set(outside[:41]) and len(mine) == 1
        with pytest.raises(NotFound):
            records.get("customer", outside[44])
