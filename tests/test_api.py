"""The REST API through HTTP (contract section 7): tokens, records, lists, errors."""
import hashlib

import pytest
import sqlalchemy as sa

from crm.core.tables import api_tokens, users
from crm.hooks import Veto, hookimpl
from tests.api_fixtures import Api, create_user, make_api, api  # noqa: F401 (fixtures)


def error(response, status, code=None):
    """The JSON error body of a response, checked for the contract's shape."""
    assert response.status_int == status, response.text
    assert response.content_type == "application/json"
    body = response.json["error"]
    assert set(body) == {"code", "message", "fields"} and isinstance(body["message"], str) and body["message"]
    if code:
        assert body["code"] == code
    return body


def new_deal(api, **values):
    return api.post("deal", {"title": "A", **values}, status=201).json


# --- tokens and authentication -----------------------------------------------------------------

def test_token_login_is_hashed_at_rest_and_revocable(api, clock):
    runtime = api.runtime
    with runtime.engine.connect() as connection:
        rows = connection.execute(sa.select(api_tokens)).mappings().all()
    assert len(rows) == 1 and rows[0]["token_hash"] == hashlib.sha256(api.token.encode()).hexdigest()
    assert api.token not in str(dict(rows[0]))
    clock.advance(minutes=5)
    assert api.get("meta/entities").status_int == 200
    with runtime.engine.connect() as connection:
        assert connection.execute(sa.select(api_tokens.c.last_used_at)).scalar() == clock()
    other = api.login("admin")                                  # a second token for the same user
    assert other.token != api.token
    api.delete("auth/token", status=204)
    error(api.get("deal", status=401), 401, "unauthorized")      # revoked
    assert other.get("deal").status_int == 200                    # the other token still works


def test_a_token_revoked_elsewhere_stops_working_on_the_next_request(api):
    """The token is checked against the database on every request, reading and writing: revoked
    by another process (here another connection), it identifies nobody at once."""
    assert api.get("deal").status_int == 200                      # the app has used (and may cache) it
    new_deal(api)
    with api.runtime.engine.begin() as connection:
        connection.execute(api_tokens.update().values(revoked_at=api.runtime.clock()))
    error(api.get("deal", status=401), 401, "unauthorized")
    error(api.post("deal", {"title": "B"}, status=401), 401, "unauthorized")
    assert api.login("admin").get("deal").json["items"][0]["title"] == "A"   # nothing was written


def test_token_use_is_recorded_at_most_once_a_minute_by_reads_and_writes(make_api, clock):
    api = make_api(plugins=[("settings", SettingsPlugin())])

    def last_used():
        with api.runtime.engine.connect() as connection:
            return connection.execute(sa.select(api_tokens.c.last_used_at)).scalar()
    clock.advance(minutes=5)
    new_deal(api)                                                 # a write records it
    assert last_used() == clock()
    recorded = clock()
    clock.advance(seconds=30)
    api.get("deal")
    assert last_used() == recorded                                # not again within the minute
    clock.advance(minutes=1)
    first = api.get("deal_settings").json                         # a read that writes: the singleton made on first use
    assert last_used() == clock()
    assert api.get("deal_settings").json["id"] == first["id"]     # and the record made was kept


def test_wrong_credentials_and_disabled_users_are_refused(api):
    anonymous = api.as_anonymous()
    error(anonymous.post("auth/token", {"username": "admin", "password": "wrong-password"}, status=401), 401, "unauthorized")
    error(anonymous.post("auth/token", {"username": "nobody", "password": "wrong-password"}, status=401), 401)
    body = error(anonymous.post("auth/token", {"username": "admin"}, status=400), 400, "bad_request")
    assert set(body["fields"]) == {"password"}
    create_user(api.runtime, "bob", admin=False)
    bob = anonymous.login("bob")
    with api.runtime.engine.begin() as connection:
        connection.execute(users.update().where(users.c.username == "bob").values(active=False))
    error(bob.get("meta/entities", status=401), 401)              # tokens of disabled users stop working
    error(anonymous.login("bob", status=403), 403, "forbidden")


def test_every_call_needs_a_bearer_token(api):
    anonymous = api.as_anonymous()
    response = anonymous.get("deal", status=401)
    error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    error(anonymous.get("no_such_entity", status=401), 401)       # nothing is revealed before authentication
    error(anonymous.get("deal", headers={"Authorization": "Bearer nonsense"}, status=401), 401)
    error(anonymous.get("deal", headers={"Authorization": "Basic YWRtaW46eA=="}, status=401), 401)
    error(anonymous.delete("auth/token", status=401), 401)
    error(anonymous.post("deal", {"title": "A"}, status=401), 401)
    assert anonymous.get("health").json == {"ok": True}           # public
    assert anonymous.get("openapi.json").json["openapi"].startswith("3.1")


def test_denied_actions_answer_403(api, monkeypatch):
    from pyramid.security import Allowed, Denied
    from crm.core.web import security
    monkeypatch.setattr(security, "check_action", lambda request, user, action, context:
                        Denied("no") if action == "delete" and context.entity_name == "deal" else Allowed("yes"))
    deal = new_deal(api)
    error(api.delete(f"deal/{deal['id']}", status=403), 403, "forbidden")
    assert api.get(f"deal/{deal['id']}").json["id"] == deal["id"]


# --- metadata --------------------------------------------------------------------------------

def test_meta_entities_and_effective_metadata(api):
    items = {e["name"]: e for e in api.get("meta/entities").json["items"]}
    assert items["deal"] == {"name": "deal", "label": {"zh_CN": "交易", "en": "Deal"}, "owner": "deals",
                             "child_of": None, "singleton": False}
    assert items["deal_line"]["child_of"] == "deal"
    meta = api.get("meta/entities/deal").json
    assert meta["fields"]["title"]["owner"] == "deals" and meta["fields"]["title"]["type"] == "text"
    assert meta["json_schema"]["properties"]["title"] == {"type": ["string", "null"], "maxLength": 100}
    error(api.get("meta/entities/nope", status=404), 404, "not_found")


# --- records ---------------------------------------------------------------------------------

def test_create_read_update_with_json_types(api):
    response = api.post("deal", {"title": "北京华信科技采购", "amount": "1234.567", "quantity": 3, "price": 9.99,
                                 "closed_on": "2026-11-30"}, status=201)
    deal = response.json
    assert response.headers["Location"].endswith(f"/api/v1/deal/{deal['id']}")
    assert deal["version"] == 1 and deal["code"] == "JY202611-001" and deal["mnemonic"] == "BJHXKJCG"
    assert deal["amount"] == 1234.57 and isinstance(deal["amount"], float)     # decimals are JSON numbers
    assert deal["total"] == 29.97 and deal["quantity"] == 3
    assert deal["closed_on"] == "2026-11-30" and deal["created_at"] == "2026-11-23T09:30:00"
    assert api.get(f"deal/{deal['id']}").json == deal
    changed = api.patch(f"deal/{deal['id']}", {"amount": 100, "version": 1}).json
    assert changed["amount"] == 100 and changed["version"] == 2 and changed["title"] == deal["title"]
    assert api.patch(f"deal/{deal['id']}", {"title": "B"}).json["version"] == 3      # version is optional


def test_lists_write_decimals_as_the_record_does(api):
    """A list reads decimal columns as the driver gives them (no Decimal on SQLite) and writes the
    same JSON numbers as a record's own document: whole numbers as integers, the others as floats."""
    prices = ["100", "1234.57", "0.01", None, "12345678901234.5", "-0.5"]
    for price in prices:
        new_deal(api, price=price, amount="7", quantity=2)
    items = api.get("deal", params={"sort": "id", "limit": "3"}).json
    items = items["items"] + api.get("deal", params={"sort": "id", "cursor": items["next_cursor"]}).json["items"]
    assert [i["price"] for i in items] == [100, 1234.57, 0.01, None, 12345678901234.5, -0.5]
    assert [type(i["price"]) for i in items] == [int, float, float, type(None), float, float]
    assert [i["amount"] for i in items] == [7] * 6
    for item in items:
        detail = api.get(f"deal/{item['id']}").json
        assert {k: detail[k] for k in item} == item
    by_price = api.get("deal", params={"sort": "-price", "limit": "2", "price__isnull": "false"}).json  # a decimal cursor
    rest = api.get("deal", params={"sort": "-price", "price__isnull": "false", "cursor": by_price["next_cursor"]}).json
    assert [i["price"] for i in by_price["items"] + rest["items"]] == [12345678901234.5, 1234.57, 100, 0.01, -0.5]


def test_children_and_links_in_records(api):
    partner = api.post("partner", {"name": "甲"}, status=201).json
    deal = new_deal(api, partners=[partner["id"]], partner_id=partner["id"],
                    lines=[{"product": "笔", "qty": 2}, {"product": "纸", "qty": 5}])
    assert deal["partners"] == [partner["id"]] and deal["partner_id"] == partner["id"]
    assert [(l["product"], l["qty"]) for l in deal["lines"]] == [("笔", 2), ("纸", 5)]
    assert set(deal["lines"][0]) == {"id", "parent_id", "sort_order", "product", "qty"}
    error(api.get("deal_line", status=404), 404)                   # child tables are no resource of their own
    error(api.get(f"deal_line/{deal['lines'][0]['id']}", status=404), 404)


def test_stale_version_conflicts_and_changes_nothing(api):
    deal = new_deal(api, amount=10)
    api.patch(f"deal/{deal['id']}", {"amount": 20, "version": 1})
    body = error(api.patch(f"deal/{deal['id']}", {"amount": 30, "title": "stale", "version": 1}, status=409), 409, "conflict")
    assert body["fields"] == {"version": "stale"}
    now = api.get(f"deal/{deal['id']}").json
    assert now["amount"] == 20 and now["title"] == "A" and now["version"] == 2


def test_validation_errors_name_every_field(api):
    body = error(api.post("deal", {"amount": "-5", "stage": "nope", "closed_on": "2026-13-45", "bogus": 1}, status=422),
                 422, "validation_failed")
    assert set(body["fields"]) == {"title", "amount", "stage", "closed_on", "bogus"}
    assert body["fields"]["title"] == "必填"
    english = error(api.post("/api/v1/deal?_LOCALE_=en", {"amount": 1}, status=422), 422)   # _LOCALE_ is no filter
    assert english["fields"] == {"title": "required"} and english["message"].startswith("please check")
    deal = new_deal(api)
    body = error(api.patch(f"deal/{deal['id']}", {"stage": "lost"}, status=422), 422)
    assert list(body["fields"]) == ["lost_reason"]                 # required_if
    body = error(api.patch(f"deal/{deal['id']}", {"lines": [{"qty": 0}]}, status=422), 422)
    assert set(body["fields"]) == {"lines.0.product", "lines.0.qty"}
    assert api.get(f"deal/{deal['id']}").json["version"] == 1


class VetoPlugin:
    @hookimpl
    def crm_before_update(self, ctx, entity, old, changes):
        if entity.name == "deal" and changes.get("stage") == "won":
            ctx.create("partner", {"name": "side effect"})
            raise Veto("赢单需要审批", field="stage")


class BrokenPlugin:
    @hookimpl
    def crm_before_create(self, ctx, entity, values):
        if entity.name == "partner" and values.get("name") == "boom":
            raise RuntimeError("a bug in a plugin")


def test_a_vetoing_hook_answers_422_and_rolls_back(make_api):
    api = make_api(plugins=[("vetoer", VetoPlugin())])
    deal = new_deal(api)
    body = error(api.patch(f"deal/{deal['id']}", {"stage": "won"}, status=422), 422, "vetoed")
    assert body["fields"] == {"stage": "赢单需要审批"} and body["message"] == "赢单需要审批"
    assert api.get(f"deal/{deal['id']}").json["stage"] == "new"
    assert api.get("partner").json["items"] == []


def test_an_unexpected_error_is_a_logged_json_500(make_api, caplog):
    api = make_api(plugins=[("broken", BrokenPlugin())])
    body = error(api.post("partner", {"name": "boom"}, status=500), 500, "internal_error")
    assert "RuntimeError" not in body["message"]
    assert any("a bug in a plugin" in (r.exc_text or "") for r in caplog.records)
    assert api.get("partner").json["items"] == []


def test_malformed_requests_answer_400(api):
    deal = new_deal(api)
    for raw in (b"{not json", b"[1, 2]", b'"text"', b"", b'{"amount": NaN}', b"\xff\xfe"):
        error(api.raw("POST", "deal", raw), 400, "bad_request")
    error(api.raw("PATCH", f"deal/{deal['id']}", b"{"), 400)
    error(api.raw("POST", "deal", b"[" * 100000 + b"]" * 100000), 400)        # absurd nesting
    error(api.post("deal", {"title": "A\x00B"}, status=400), 400)             # no column holds NUL
    error(api.post("deal", {"title": "A", "quantity": 10**30}, status=400), 400)
    error(api.patch(f"deal/{deal['id']}", {"version": "one"}, status=400), 400)
    for params in ({"limit": "0"}, {"limit": "501"}, {"limit": "x"}, {"cursor": "garbage"}, {"count": "maybe"},
                   {"sort": "nope"}, {"sort": "lines"}, {"nope": "1"}, {"title__like": "A"}, {"amount__gt": "x"},
                   {"closed_on": "2026-02-30"}, {"quantity": "99999999999999999999999"}, {"title": "A\x00"},
                   {"partners__gt": "1"}, {"lines": "1"}):
        error(api.get("deal", params=params, status=400), 400, "bad_request")
    error(api.get("/api/v1/deal?title=%FF", status=400), 400)
    error(api.get("trash", params={"limit": "0"}, status=400), 400)
    error(api.post("deal/merge", {"survivor": "x", "duplicate": 1}, status=400), 400)
    error(api.post("deal/merge", {"survivor": deal["id"], "duplicate": deal["id"]}, status=400), 400)
    error(api.post("deal/merge", {"survivor": deal["id"], "duplicate": 2, "values": []}, status=400), 400)


def test_unknown_things_answer_404_and_wrong_methods_405(api):
    error(api.get("nope", status=404), 404, "not_found")
    error(api.post("nope", {"a": 1}, status=404), 404)
    error(api.get("deal/999", status=404), 404)
    error(api.get("deal/abc", status=404), 404)
    error(api.get("deal/99999999999999999999999", status=404), 404)
    error(api.patch("deal/999", {"title": "x"}, status=404), 404)
    error(api.delete("deal/999", status=404), 404)
    error(api.get("deal/1/nope", status=404), 404)
    error(api.get("/api/v1/", status=404), 404)
    error(api.get("/api/v1/a/b/c/d/e", status=404), 404)
    response = api.app.put("/api/v1/deal", headers=api.headers(), status=405)
    assert error(response, 405, "method_not_allowed") and response.headers["Allow"] == "GET, POST, PATCH"
    error(api.patch("deal", {"title": "x"}, status=405), 405)     # PATCH is for singletons and records
    error(api.app.get("/api/v1/deal/merge", headers=api.headers(), status=405), 405)


# --- lists -----------------------------------------------------------------------------------

def test_filters_with_operators(api, clock):
    p1 = api.post("partner", {"name": "甲"}, status=201).json["id"]
    for i in range(10):
        clock.advance(minutes=1)
        new_deal(api, title=f"单{i}", amount=i, stage=["new", "won"][i % 2], closed_on=f"2026-12-{i + 1:02d}",
                 email=f"d{i}@example.com" if i < 3 else None, partners=[p1] if i < 2 else [])

    def titles(**params):
        return sorted(d["title"] for d in api.get("deal", params=params).json["items"])

    assert titles(stage="won") == ["单1", "单3", "单5", "单7", "单9"]
    assert titles(stage__eq="won", amount__gte="5") == ["单5", "单7", "单9"]
    assert titles(stage__ne="won", amount__lt="3") == ["单0", "单2"]
    assert titles(amount__gt="7") == ["单8", "单9"]
    assert titles(amount__lte="1") == ["单0", "单1"]
    assert titles(amount__in="1,4,99") == ["单1", "单4"]
    assert titles(title__contains="单1") == ["单1"]
    assert titles(email__startswith="d2") == ["单2"]
    assert titles(email__isnull="false") == ["单0", "单1", "单2"]
    assert len(titles(email__isnull="true")) == 7
    assert titles(closed_on__gte="2026-12-09") == ["单8", "单9"]
    assert titles(partners=str(p1)) == ["单0", "单1"]
    assert titles(id=str(api.get("deal", params={"title": "单4"}).json["items"][0]["id"])) == ["单4"]
    # a parameter may repeat: every condition applies
    response = api.app.get("/api/v1/deal?amount__gte=2&amount__gte=4&amount__lte=5", headers=api.headers())
    assert sorted(d["title"] for d in response.json["items"]) == ["单4", "单5"]


def test_keyset_paging_through_every_page_and_count(api, clock):
    for i in range(23):
        clock.advance(minutes=1)
        new_deal(api, title=f"单{i:02d}", amount=i % 5, stage=["new", "won"][i % 2])
    new_deal(api, title="无金额", amount=None)
    first = api.get("deal", params={"limit": "4"}).json
    assert first["total"] is None and len(first["items"]) == 4       # no count unless asked
    assert api.get("deal", params={"count": "true", "stage": "won"}).json["total"] == 11
    seen, cursor, pages = [], None, 0
    while True:
        params = {"sort": "-amount,title", "limit": "5", **({"cursor": cursor} if cursor else {})}
        page = api.get("deal", params=params).json
        seen += [(d["amount"], d["title"]) for d in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 5 and len(seen) == 24 == len(set(seen))
    with_amount = [s for s in seen if s[0] is not None]
    assert with_amount == sorted(with_amount, key=lambda x: (-x[0], x[1]))
    default = [d["title"] for d in api.get("deal", params={"limit": "500"}).json["items"]]
    assert default[0] == "无金额" and default[-1] == "单00"             # default sort: -created_at
    error(api.get("deal", params={"sort": "title", "cursor": cursor or first["next_cursor"]}, status=400), 400)


def test_quick_search_with_pinyin_initials(api):
    new_deal(api, title="上海贝尔")
    new_deal(api, title="北京华信")
    assert [d["title"] for d in api.get("deal", params={"q": "SHBE"}).json["items"]] == ["上海贝尔"]
    assert [d["title"] for d in api.get("deal", params={"q": "shbe"}).json["items"]] == ["上海贝尔"]
    assert [d["title"] for d in api.get("deal", params={"q": "华信"}).json["items"]] == ["北京华信"]
    assert api.get("deal", params={"q": "100%_"}).json["items"] == []


# --- recycle bin, history, copy, merge -------------------------------------------------------

def test_delete_moves_to_recycle_bin_and_restore_brings_back(api):
    deal = new_deal(api, title="要删除")
    response = api.delete(f"deal/{deal['id']}")
    assert response.status_int == 204 and response.body == b""
    error(api.get(f"deal/{deal['id']}", status=404), 404)
    error(api.delete(f"deal/{deal['id']}", status=404), 404)
    assert api.get("deal").json["items"] == []
    trash = api.get("trash", params={"entity": "deal"}).json["items"]
    assert [(t["entity"], t["record_id"], t["title"]) for t in trash] == [("deal", deal["id"], "要删除")]
    assert trash[0]["deleted_by"] is not None and trash[0]["deleted_at"] == "2026-11-23T09:30:00"
    assert api.get("trash", params={"entity": "partner"}).json["items"] == []
    error(api.get("trash", params={"entity": "nope"}, status=404), 404)
    restored = api.post(f"deal/{deal['id']}/restore").json
    assert restored["title"] == "要删除" and restored["deleted_at"] is None and restored["version"] == 3
    assert api.get(f"deal/{deal['id']}").json["id"] == deal["id"]
    assert api.get("trash").json["items"] == []
    error(api.post(f"deal/{deal['id']}/restore", status=404), 404)  # not in the bin any more


def test_history_lists_changes_newest_first(api, clock):
    deal = new_deal(api, amount=10)
    clock.advance(minutes=5)
    api.patch(f"deal/{deal['id']}", {"amount": 20, "title": "B"})
    items = api.get(f"deal/{deal['id']}/history").json["items"]
    changes = {(h["action"], h["field"]): h for h in items}
    assert changes[("update", "amount")]["old_value"] == 10 and changes[("update", "amount")]["new_value"] == 20
    assert changes[("update", "title")]["at"] == "2026-11-23T09:35:00"
    assert items[-1]["action"] == "create" and items[-1]["user_id"] is not None
    error(api.get("deal/999/history", status=404), 404)


def test_copy_makes_a_new_record(api):
    deal = new_deal(api, email="a@example.com", amount=5, lines=[{"product": "笔"}])
    copy = api.post(f"deal/{deal['id']}/copy", status=201).json
    assert copy["id"] != deal["id"] and copy["code"] == "JY202611-002" and copy["email"] is None
    assert copy["amount"] == 5 and [l["product"] for l in copy["lines"]] == ["笔"]
    changed = api.post(f"deal/{deal['id']}/copy", {"title": "副本"}, status=201).json
    assert changed["title"] == "副本"
    error(api.post("deal/999/copy", status=404), 404)


def test_merge_moves_links_and_bins_the_duplicate(api):
    keep = api.post("partner", {"name": "华为", "city": "深圳"}, status=201).json
    dup = api.post("partner", {"name": "华为技术"}, status=201).json
    deal = new_deal(api, partner_id=dup["id"], partners=[dup["id"]])
    merged = api.post("partner/merge", {"survivor": keep["id"], "duplicate": dup["id"],
                                        "values": {"name": "华为技术有限公司"}}).json
    assert merged["id"] == keep["id"] and merged["name"] == "华为技术有限公司" and merged["city"] == "深圳"
    error(api.get(f"partner/{dup['id']}", status=404), 404)
    again = api.get(f"deal/{deal['id']}").json
    assert again["partner_id"] == keep["id"] and again["partners"] == [keep["id"]]
    assert "merge" in [h["action"] for h in api.get(f"partner/{keep['id']}/history").json["items"]]
    error(api.post("partner/merge", {"survivor": keep["id"], "duplicate": dup["id"]}, status=404), 404)
    error(api.post("partner/merge", {"survivor": keep["id"], "duplicate": 999, "values": {"bogus": 1}}, status=404), 404)


# --- singletons ------------------------------------------------------------------------------

SETTINGS = {
    "name": "deal_settings", "label": {"zh_CN": "交易设置", "en": "Deal settings"}, "singleton": True,
    "fields": {"prefix": {"type": "text", "max_length": 10, "default": "JY"}, "days": {"type": "integer", "min": 1}},
}


class SettingsPlugin:
    @hookimpl
    def crm_metadata(self):
        return [SETTINGS]


def test_singleton_entities_have_one_record(make_api):
    api = make_api(plugins=[("settings", SettingsPlugin())])
    first = api.get("deal_settings").json
    assert first["prefix"] == "JY" and first["version"] == 1
    assert api.get("deal_settings").json["id"] == first["id"]        # made once, on first use
    changed = api.patch("deal_settings", {"days": 7, "version": 1}).json
    assert changed["days"] == 7 and changed["version"] == 2 and changed["id"] == first["id"]
    error(api.patch("deal_settings", {"days": 8, "version": 1}, status=409), 409)
    error(api.patch("deal_settings", {"days": 0}, status=422), 422)
    error(api.post("deal_settings", {"days": 1}, status=405), 405)
    error(api.get(f"deal_settings/{first['id']}", status=404), 404)
    assert api.get("deal_settings").json["days"] == 7
    assert {e["name"]: e for e in api.get("meta/entities").json["items"]}["deal_settings"]["singleton"] is True


# --- request properties ------------------------------------------------------------------------

class RequestPropertiesPlugin:
    """A plugin adding a reified property and a method to requests, and a view showing both with
    the core's own properties (``crm_user``, ``records``)."""

    def __init__(self):
        self.request_classes = set()

    @hookimpl
    def crm_web_config(self, config):
        config.add_request_method(lambda request: f"call #{len(self.request_classes)}", "greeting", reify=True)
        config.add_request_method(lambda request, n: n * 2, "double")
        config.add_route("requestprops.show", "/requestprops")
        config.add_view(self.show, route_name="requestprops.show", renderer="json", permission="read")

    def show(self, request):
        self.request_classes.add(type(request))
        return {"greeting": request.greeting, "double": request.double(21), "user": request.crm_user["username"],
                "deals": len(request.records.list("deal").items)}


def test_request_properties_of_plugins_and_the_core_work_on_one_request_class(make_api):
    plugin = RequestPropertiesPlugin()
    api = make_api(plugins=[("requestprops", plugin)])
    new_deal(api)
    first = api.app.get("/requestprops", headers=api.headers(), status=200).json
    second = api.app.get("/requestprops", headers=api.headers(), status=200).json
    assert first == {"greeting": "call #1", "double": 42, "user": "admin", "deals": 1}
    assert second == first                         # the same class the second time: still "call #1"
    assert len(plugin.request_classes) == 1        # Pyramid would make a class per request (crm.core.app.request_class_once)
    api.as_anonymous().app.get("/requestprops", status=302)         # outside /api/v1: to the login page


def test_a_reading_request_commits_when_it_succeeds_so_postgresql_keeps_its_prepared_statements(make_api):
    """A GET's transaction ends with COMMIT when the request succeeded and with ROLLBACK when it
    failed. On PostgreSQL that keeps psycopg's prepared statements: it forgets them all at every
    ROLLBACK, so that the list's query would be planned again on every request."""
    api = make_api(**{"crm.database.pool_size": "1"})       # one connection: every request on it
    engine, ends = api.runtime.engine, []
    sa.event.listen(engine, "commit", lambda connection: ends.append("COMMIT"))
    sa.event.listen(engine, "rollback", lambda connection: ends.append("ROLLBACK"))
    new_deal(api, title="prepared")
    del ends[:]
    for _ in range(7):                                       # psycopg prepares at the fifth execution
        assert api.get("deal", {"q": "prepared"}).json["items"][0]["title"] == "prepared"
    assert ends == ["COMMIT"] * 7
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:                 # the connection the requests used
            prepared = connection.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars().all()
        assert any(statement.startswith("SELECT deal.id") and "ILIKE" in statement for statement in prepared), prepared
    del ends[:]
    error(api.get("deal/999999", status=404), 404, "not_found")
    assert ends == ["ROLLBACK"]
