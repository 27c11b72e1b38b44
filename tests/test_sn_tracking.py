"""The sn_tracking plugin: SN uniqueness under concurrent import, generation by pattern, warranty at
the boundary dates, service records (dispatch, completion, follow-up), returns, warranty extensions,
FAQ, and the full history of an SN (also through the REST API)."""
import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from crm.core import access, auth, directory as org, notifications, workflow
from crm.core.errors import BadRequest, Forbidden, NotFound, Vetoed
from crm.core.jobs import run_due
from crm.plugins.sn_tracking import history, serials, service
from tests.api_fixtures import create_user, make_api  # noqa: F401 (fixtures)

D = dt.date
SERVICE_RULES = {"entities": {"*": {"read": "all"}, "service_record": {"read": "all", "create": "all", "update": "own"},
                              "faq_entry": {"read": "all", "create": "all"}}, "permissions": []}


@pytest.fixture
def shop(runtime):
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        access.save_role(s, "service_staff", {"zh_CN": "服务人员"}, SERVICE_RULES)
        lead = org.add_user(s, "lead", "password-lead", now=now, admin=True)
        tech = org.add_user(s, "tech", "password-tech", now=now, manager_id=lead, role_names=["service_staff"])
        sales = org.add_user(s, "sales", "password-sales", now=now)
        product = records.create("product", {"name": "智能门锁 X1"})
        customer = records.create("customer", {"name": "华信科技", "address": "北京市海淀区中关村大街1号", "phone": "010-6552 8888"})
        return {"lead": auth.get_user(s, user_id=lead), "tech": auth.get_user(s, user_id=tech), "sales": sales,
                "product": product, "customer": customer}


def write_csv(path, sns, product="智能门锁 X1"):
    path.write_text("sn,product_id,purchase_date\n" + "".join(f"{sn},{product},2026-11-01\n" for sn in sns), "utf-8")
    return path


def all_sns(runtime):
    with runtime.engine.connect() as connection:
        table = runtime.metadata.entities["serial_number"].table
        return list(connection.execute(sa.select(table.c.sn)).scalars())


# --- uniqueness --------------------------------------------------------------------------------------

def test_concurrent_imports_of_overlapping_files_create_each_sn_once(runtime, shop, tmp_path):
    first = write_csv(tmp_path / "a.csv", [f"SN-{i:04d}" for i in range(1, 61)])
    second = write_csv(tmp_path / "b.csv", [f"SN-{i:04d}" for i in range(31, 91)])
    start, results, errors = threading.Barrier(2), {}, []

    def work(name, path):
        try:
            start.wait()
            with runtime.transaction() as records:
                results[name] = serials.import_file(records, path)
        except Exception as e:          # noqa: BLE001  (reported below)
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(n, p)) for n, p in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    stored = all_sns(runtime)
    assert len(stored) == len(set(stored)) == 90
    a, b = results["a"], results["b"]
    assert a.counts["created"] + b.counts["created"] == 90
    outcome = {}
    for result, rows in ((a, range(1, 61)), (b, range(31, 91))):
        for o, n in zip(result.outcomes, rows):
            outcome.setdefault(n, []).append(o.action)
    for n in range(31, 61):             # every overlapping SN: created by one import, refused by the other
        assert sorted(outcome[n])[0] == "created" and sorted(outcome[n])[1] in ("error", "skipped"), (n, outcome[n])
    for o in a.outcomes + b.outcomes:
        if o.action == "error":
            assert "sn" in o.fields and ("already exists" in o.reason or "someone else" in o.reason)


def test_an_import_waits_for_a_concurrent_entry_of_the_same_sn(runtime, shop, tmp_path):
    """One transaction holds a new, uncommitted SN; an import with the same SN waits for it and then
    reports that row (no database error, no duplicate)."""
    path = write_csv(tmp_path / "c.csv", ["SN-X", "SN-Y"])
    entered, results, errors = threading.Event(), {}, []

    def hold():
        with runtime.transaction() as records:
            records.create("serial_number", {"sn": "SN-X"})
            entered.set()
            time.sleep(1.0)

    def load():
        entered.wait(10)
        try:
            with runtime.transaction() as records:
                results["import"] = serials.import_file(records, path)
        except Exception as e:          # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=hold), threading.Thread(target=load)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    actions = [o.action for o in results["import"].outcomes]
    assert actions[0] in ("skipped", "error") and actions[1] == "created"
    assert sorted(all_sns(runtime)) == ["SN-X", "SN-Y"]


def test_sn_is_unique_when_typed_in_and_checked_on_update(runtime, shop):
    with runtime.transaction() as records:
        item = records.create("serial_number", {"sn": "A-1"})
        other = records.create("serial_number", {"sn": "A-2"})
        with pytest.raises(Exception) as failed:
            records.create("serial_number", {"sn": "A-1"})
        assert set(failed.value.fields) == {"sn"}
        with pytest.raises(Exception) as failed:
            records.update("serial_number", other["id"], {"sn": "A-1"})
        assert set(failed.value.fields) == {"sn"}
        records.delete("serial_number", item["id"])
        with pytest.raises(Exception):
            records.create("serial_number", {"sn": "A-1"})           # the recycle bin keeps its SN
        assert item["status"] == "in_stock"


def test_generated_sns_follow_the_pattern_and_skip_used_numbers(runtime, shop):
    with runtime.transaction() as records:
        made = serials.generate(records, "SN{YYYY}{MM}-{#####}", 3, {"product_id": shop["product"]["id"], "batch": "B1"})
        assert [m["sn"] for m in made] == ["SN202611-00001", "SN202611-00002", "SN202611-00003"]
        assert all(m["product_id"] == shop["product"]["id"] and m["batch"] == "B1" for m in made)
        records.create("serial_number", {"sn": "SN202611-00004"})    # typed in by hand meanwhile
        assert [m["sn"] for m in serials.generate(records, "SN{YYYY}{MM}-{#####}", 2)] == ["SN202611-00005", "SN202611-00006"]
        with pytest.raises(BadRequest):
            serials.generate(records, "SN-FIXED", 2)
        with pytest.raises(BadRequest):
            serials.generate(records, "SN{#}", 0)


def test_concurrent_generation_draws_distinct_numbers(runtime, shop):
    start, errors = threading.Barrier(2), []

    def work():
        try:
            start.wait()
            with runtime.transaction() as records:
                serials.generate(records, "G{YY}-{####}", 15)
        except Exception as e:          # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert sorted(all_sns(runtime)) == [f"G26-{i:04d}" for i in range(1, 31)]


# --- warranty ------------------------------------------------------------------------------------------

def test_default_warranty_end(runtime):
    assert serials.default_warranty_end(D(2026, 3, 15), 12) == D(2027, 3, 14)
    assert serials.default_warranty_end(D(2024, 3, 1), 12) == D(2025, 2, 28)
    assert serials.default_warranty_end(D(2024, 2, 29), 12) == D(2025, 2, 28)
    assert serials.default_warranty_end(D(2026, 1, 31), 1) == D(2026, 2, 28)
    assert serials.default_warranty_end(D(2026, 1, 31), 0) is None
    assert serials.default_warranty_end(D(9999, 6, 1), 12) is None
    with runtime.transaction() as records:
        records.update("system_settings", records.singleton("system_settings")["id"], {"sn_tracking_warranty_months": 24})
        item = records.create("serial_number", {"sn": "W-1", "purchase_date": "2026-03-15"})
        assert item["warranty_end"] == D(2028, 3, 14)
        given = records.create("serial_number", {"sn": "W-2", "purchase_date": "2026-03-15", "warranty_end": "2026-06-30"})
        assert given["warranty_end"] == D(2026, 6, 30)


@pytest.mark.parametrize("day, expected", [("2027-01-13", "in_warranty"), ("2027-01-14", "in_warranty"), ("2027-01-15", "out_of_warranty")])
def test_warranty_status_at_the_boundary_is_recorded(runtime, shop, day, expected):
    with runtime.transaction() as records:
        item = records.create("serial_number", {"sn": "B-1", "customer_id": shop["customer"]["id"], "purchase_date": "2026-01-15",
                                                "product_id": shop["product"]["id"]})
        assert item["warranty_end"] == D(2027, 1, 14)
        record = records.create("service_record", {"serial_number_id": item["id"], "request_type": "onsite", "service_date": day})
        assert (record["warranty_status"], record["warranty_end"]) == (expected, D(2027, 1, 14))
        assert record["customer_id"] == shop["customer"]["id"] and record["product_id"] == shop["product"]["id"]
        assert history.lookup(records, "B-1", on=D.fromisoformat(day))["warranty"]["status"] == expected
        # recorded: a later extension does not rewrite the status at that service date
        records.create("warranty_extension", {"serial_number_id": item["id"], "new_warranty_end": "2028-01-14", "reason": "客户关怀"})
        assert records.get("service_record", record["id"])["warranty_status"] == expected
        moved = records.update("service_record", record["id"], {"service_date": "2027-06-01"})
        assert (moved["warranty_status"], moved["warranty_end"]) == ("in_warranty", D(2028, 1, 14))
        unknown = records.create("service_record", {"request_type": "consultation", "customer_id": shop["customer"]["id"]})
        assert unknown["warranty_status"] == "unknown" and unknown["service_date"] == records.today()


def test_warranty_extensions_and_returns_keep_the_sn_up_to_date(runtime, shop):
    with runtime.transaction() as records:
        item = records.create("serial_number", {"sn": "E-1", "customer_id": shop["customer"]["id"], "purchase_date": "2026-01-15"})
        ext = records.create("warranty_extension", {"serial_number_id": item["id"], "new_warranty_end": "2027-07-14"})
        assert (ext["old_warranty_end"], ext["extended_on"]) == (D(2027, 1, 14), records.today())
        assert records.get("serial_number", item["id"])["warranty_end"] == D(2027, 7, 14)
        with pytest.raises(Vetoed, match="after the current"):
            records.create("warranty_extension", {"serial_number_id": item["id"], "new_warranty_end": "2027-07-14"})
        with pytest.raises(Vetoed, match="cannot be changed"):
            records.update("warranty_extension", ext["id"], {"new_warranty_end": "2028-01-01"})
        records.delete("warranty_extension", ext["id"])
        assert records.get("serial_number", item["id"])["warranty_end"] == D(2027, 1, 14)
        returned = records.create("sn_return", {"serial_number_id": item["id"], "kind": "return", "return_date": "2027-02-01",
                                                "reason": "质量问题", "refund_amount": 1200})
        assert returned["customer_id"] == shop["customer"]["id"] and returned["warranty_status"] == "out_of_warranty"
        assert records.get("serial_number", item["id"])["status"] == "returned"
        records.delete("sn_return", returned["id"])
        assert records.get("serial_number", item["id"])["status"] == "sold"


# --- service records -----------------------------------------------------------------------------------

def test_dispatch_completion_and_follow_up_per_type(runtime, shop, clock):
    with runtime.transaction() as records:
        settings = records.singleton("system_settings")
        records.update("system_settings", settings["id"], {"sn_tracking_visit_days_onsite": 5})
        item = records.create("serial_number", {"sn": "S-1", "customer_id": shop["customer"]["id"], "purchase_date": "2026-06-01"})
        request = records.create("service_record", {"serial_number_id": item["id"], "request_type": "onsite", "subject": "门锁无法开启",
                                                    "description": "指纹识别失败", "fault_category": "hardware"})
        assert request["status"] == "new" and request["code"] == "FW202611-0001" and request["warranty_status"] == "in_warranty"
    with runtime.transaction(user=shop["lead"]) as records:
        dispatched = service.dispatch(records, request["id"], shop["tech"]["id"])
        assert dispatched["status"] == "dispatched" and dispatched["service_address"] == "北京市海淀区中关村大街1号"
        assert dispatched["contact_phone"] == "010-6552 8888" and dispatched["dispatched_at"] == clock()
        assert notifications.for_user(records, shop["tech"]["id"])[0]["title"].startswith("派工：FW202611-0001 门锁无法开启")
    with runtime.transaction(user=shop["tech"]) as records:
        with pytest.raises(Forbidden, match="不满足此步骤的条件"):
            workflow.transition(records, "service_record", request["id"], "complete")     # no repair content yet
        workflow.transition(records, "service_record", request["id"], "start")
        clock.advance(days=1)
        done = service.complete(records, request["id"], repair_content="更换指纹模块", measures="上门检测，更换模块")
        assert (done["status"], done["completed_on"], done["visit_due_on"]) == ("completed", D(2026, 11, 24), D(2026, 11, 29))
    assert dict(run_due(runtime, only=["sn_tracking.reminders"]))["sn_tracking.reminders"].startswith("done ({'visits': 0")
    clock.advance(days=5)
    list(run_due(runtime, only=["sn_tracking.reminders"]))
    with runtime.transaction(user=shop["tech"]) as records:
        assert notifications.for_user(records, shop["tech"]["id"])[0]["title"] == "回访到期：FW202611-0001（2026-11-29）"
        visited = service.follow_up(records, request["id"], "客户满意", satisfaction=5)
        assert (visited["status"], visited["visited_on"]) == ("visited", clock().date())
    with runtime.transaction() as records:
        question = records.create("service_record", {"request_type": "consultation", "customer_id": shop["customer"]["id"],
                                                     "subject": "如何重置管理员密码", "measures": "长按复位键5秒后重新设置"})
        answered = service.complete(records, question["id"])
        assert answered["status"] == "completed" and answered["visit_due_on"] == clock().date() + dt.timedelta(days=1)
        assert answered["service_address"] is None                   # not dispatched: no address copied


def test_faq_entries_from_service_records_are_searchable(runtime, shop):
    with runtime.transaction() as records:
        record = records.create("service_record", {"request_type": "consultation", "customer_id": shop["customer"]["id"],
                                                   "product_id": shop["product"]["id"], "subject": "如何重置管理员密码",
                                                   "measures": "长按复位键5秒后重新设置", "fault_category": "usage"})
        entry = service.faq_from_service(records, record["id"], tags="密码,复位")
        assert (entry["question"], entry["answer"], entry["source_service_id"]) == ("如何重置管理员密码", "长按复位键5秒后重新设置", record["id"])
        assert records.get("service_record", record["id"])["faq_id"] == entry["id"]
        records.create("faq_entry", {"question": "门锁电池能用多久", "answer": "约一年", "tags": "电池"})
        assert [e["id"] for e in service.search_faq(records, "复位")] == [entry["id"]]
        assert [e["id"] for e in service.search_faq(records, "密码", product_id=shop["product"]["id"])] == [entry["id"]]
        assert [e["question"] for e in records.list("faq_entry", q="电池").items] == ["门锁电池能用多久"]
        empty = records.create("service_record", {"request_type": "onsite"})
        with pytest.raises(Exception):
            service.faq_from_service(records, empty["id"])


# --- history -------------------------------------------------------------------------------------------

def make_history(runtime, shop, clock):
    with runtime.transaction() as records:
        item = records.create("serial_number", {"sn": "SN202601-00042", "product_id": shop["product"]["id"], "production_date": "2025-12-20",
                                                "supplier": "深圳某电子厂", "customer_id": shop["customer"]["id"], "purchase_date": "2026-01-15",
                                                "salesperson_id": shop["sales"], "order_ref": "DD-2026-001", "contract_ref": "HT-2026-009"})
        spare = records.create("serial_number", {"sn": "SN202601-00099", "product_id": shop["product"]["id"]})
        first = records.create("service_record", {"serial_number_id": item["id"], "request_type": "onsite", "service_date": "2026-11-23",
                                                  "subject": "门锁无法开启", "fault_category": "hardware"})
        question = records.create("service_record", {"serial_number_id": item["id"], "request_type": "consultation",
                                                     "service_date": "2026-03-02", "subject": "如何添加指纹", "measures": "电话指导"})
    with runtime.transaction(user=shop["lead"]) as records:
        service.complete(records, question["id"])
        service.dispatch(records, first["id"], shop["tech"]["id"])
    clock.advance(days=2)
    with runtime.transaction(user=shop["tech"]) as records:
        service.complete(records, first["id"], repair_content="更换指纹模块", measures="返修模块")
    clock.advance(days=3)
    with runtime.transaction(user=shop["lead"]) as records:
        service.follow_up(records, first["id"], "已恢复正常", satisfaction=4)
        records.create("warranty_extension", {"serial_number_id": item["id"], "new_warranty_end": "2027-07-14", "reason": "维修后延保半年"})
        swap = records.create("sn_return", {"serial_number_id": item["id"], "kind": "exchange", "return_date": "2026-12-10",
                                            "replacement_id": spare["id"], "reason": "再次故障，换新"})
    return item, spare, first, question, swap


def test_the_full_history_of_an_sn_in_date_order(runtime, shop, clock):
    item, spare, first, question, swap = make_history(runtime, shop, clock)
    with runtime.transaction() as records:
        found = history.lookup(records, " sn202601-00042 ")             # scanner input: blanks, another case
        assert found["serial_number"]["id"] == item["id"] and found["customer"] == "华信科技" and found["product"] == "智能门锁 X1"
        events = [(e["date"], e["kind"], e["record_id"]) for e in found["events"]]
        assert events == [
            (D(2025, 12, 20), "production", item["id"]),
            (D(2026, 1, 15), "sale", item["id"]),
            (D(2026, 3, 2), "service_request", question["id"]),
            (D(2026, 11, 23), "service_request", first["id"]),         # same day: requests before answers
            (D(2026, 11, 23), "answer", question["id"]),               # answered on the test clock's day
            (D(2026, 11, 25), "repair", first["id"]),
            (D(2026, 11, 28), "follow_up", first["id"]),
            (D(2026, 11, 28), "warranty_extension", found["events"][7]["record_id"]),
            (D(2026, 12, 10), "exchange", swap["id"]),
        ]
        sale = found["events"][1]["details"]
        assert (sale["order_ref"], sale["contract_ref"], sale["salesperson_id"]) == ("DD-2026-001", "HT-2026-009", shop["sales"])
        repair = found["events"][5]
        assert repair["label"] == "维修" and repair["details"]["repair_content"] == "更换指纹模块"
        assert repair["details"]["fault_category_label"] == "硬件故障"
        request = found["events"][3]["details"]
        assert request["request_type_label"] == "上门维护" and request["warranty_status"] == "in_warranty"
        assert found["events"][6]["details"]["satisfaction"] == 4
        assert found["events"][7]["details"]["old_warranty_end"] == D(2027, 1, 14)
        assert found["events"][8]["details"]["replacement"] == "SN202601-00099"
        assert found["warranty"]["warranty_end"] == D(2027, 7, 14) and found["warranty"]["status"] == "in_warranty"
        replacement = history.lookup(records, "SN202601-00099")
        assert [e["kind"] for e in replacement["events"]] == ["sale", "replacement"]
        assert replacement["serial_number"]["customer_id"] == shop["customer"]["id"]
        assert replacement["serial_number"]["warranty_end"] == D(2027, 7, 14)
        assert records.get("serial_number", item["id"])["status"] == "exchanged"
        with pytest.raises(NotFound):
            history.lookup(records, "NO-SUCH-SN")


def test_sn_lookup_api(make_api, clock):  # noqa: F811
    client = make_api(enabled="sn_tracking")
    with client.runtime.transaction() as records:
        shop = {"product": records.create("product", {"name": "智能门锁 X1"}),
                "customer": records.create("customer", {"name": "华信科技", "address": "北京"}),
                "sales": None}
        s, now = records.session, records.now()
        shop["lead"] = auth.get_user(s, user_id=org.add_user(s, "lead", "password-lead", now=now, admin=True))
        access.save_role(s, "service_staff", {"zh_CN": "服务人员"}, SERVICE_RULES)
        shop["tech"] = auth.get_user(s, user_id=org.add_user(s, "tech", "password-tech", now=now, role_names=["service_staff"]))
    item, *_ = make_history(client.runtime, shop, clock)
    body = client.get("sn_tracking/lookup/SN202601-00042").json
    assert body["serial_number"]["sn"] == "SN202601-00042" and body["serial_number"]["purchase_date"] == "2026-01-15"
    assert [e["kind"] for e in body["events"]][:3] == ["production", "sale", "service_request"]
    assert body["events"][0]["date"] == "2025-12-20" and body["warranty"]["status"] == "in_warranty"
    missing = client.get("sn_tracking/lookup/NOPE", status=404).json["error"]
    assert missing["code"] == "not_found"
    assert client.as_anonymous().get("sn_tracking/lookup/SN202601-00042", status=401).json["error"]["code"] == "unauthorized"
    assert client.post("sn_tracking/lookup/SN202601-00042", {}, status=405).json["error"]["code"] == "method_not_allowed"


def test_sn_look_up_page(make_runtime, clock):
    from tests.test_pages import Site
    runtime = make_runtime()
    create_user(runtime, "admin", display_name="管理员")
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        access.save_role(s, "service_staff", {"zh_CN": "服务人员"}, SERVICE_RULES)
        shop = {"product": records.create("product", {"name": "智能门锁 X1"}), "sales": None,
                "customer": records.create("customer", {"name": "华信科技", "address": "北京"}),
                "lead": auth.get_user(s, user_id=org.add_user(s, "lead", "password-lead", now=now, admin=True)),
                "tech": auth.get_user(s, user_id=org.add_user(s, "tech", "password-tech", now=now, role_names=["service_staff"]))}
    item, spare, first, *_ = make_history(runtime, shop, clock)
    site = Site(runtime)
    site.login()
    empty = site.get("/app/sn_tracking/scan")
    assert 'id="sn-input"' in empty.text and "autofocus" in empty.text and "SN查询" in empty.text
    page = site.get("/app/sn_tracking/scan", params={"sn": "SN202601-00042"})
    assert "产品履历" in page.text and "更换指纹模块" in page.text and "保修期内" in page.text
    assert f'href="/app/service_record/{first["id"]}"' in page.text
    assert page.text.index('data-kind="production"') < page.text.index('data-kind="repair"') < page.text.index('data-kind="exchange"')
    assert "没有找到SN NOPE" in site.get("/app/sn_tracking/scan", params={"sn": "NOPE"}, status=404).text
    detail = site.get(f"/app/serial_number/{item['id']}")
    assert "/app/sn_tracking/scan?sn=SN202601-00042" in detail.text
    assert "/app/sn_tracking/scan?sn=SN202601-00042" in site.get(f"/app/service_record/{first['id']}").text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_browser_look_up_an_sn_and_open_the_repair(make_runtime, clock, database_url):
    import re
    from crm.core.app import make_app
    from tests import browser as b
    from tests.api_fixtures import PASSWORD
    playwright = b.playwright_api()
    runtime = make_runtime(**{"crm.secret": "sn-browser-test-secret-0123456789abcdef"})
    create_user(runtime, "admin", display_name="王客服")
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        access.save_role(s, "service_staff", {"zh_CN": "服务人员"}, SERVICE_RULES)
        shop = {"product": records.create("product", {"name": "智能门锁 X1"}), "sales": None,
                "customer": records.create("customer", {"name": "华信科技", "address": "北京"}),
                "lead": auth.get_user(s, user_id=org.add_user(s, "lead", "password-lead", now=now, admin=True)),
                "tech": auth.get_user(s, user_id=org.add_user(s, "tech", "password-tech", now=now, role_names=["service_staff"]))}
    item, spare, first, *_ = make_history(runtime, shop, clock)
    expect, errors = playwright.expect, []
    with b.served(make_app(runtime)) as base, b.chromium(playwright) as browser:
        page = b.new_page(browser, errors)
        b.login(page, base, "admin", PASSWORD)
        page.click(".sidebar a[href='/app/sn_tracking/scan']")
        expect(page.locator("#sn-input")).to_be_focused()          # a scanner types straight into it
        page.keyboard.type("SN202601-00042")
        with page.expect_navigation():
            page.keyboard.press("Enter")                           # scanners end with Enter
        expect(page.locator("[data-testid=warranty-status]")).to_have_text("保修期内")
        rows = page.locator("[data-testid=sn-events] tbody tr")
        expect(rows).to_have_count(9)
        expect(rows.nth(0)).to_contain_text("生产")
        repair = page.locator("tr[data-kind=repair]")
        expect(repair).to_contain_text("更换指纹模块")
        with page.expect_navigation():
            repair.locator("a").click()
        page.wait_for_url(re.compile(rf"/app/service_record/{first['id']}$"))
        expect(page.locator("main")).to_contain_text("更换指纹模块")
        expect(page.locator("main")).to_contain_text("产品履历")             # the way back to the history
    assert not errors, f"JavaScript errors: {errors}"
