"""Customer management in a real browser (Playwright driving Debian's Chromium, see tests/browser.py)
against the app served by waitress over SQLite: the import wizard with a real .xlsx made with
openpyxl (duplicates, a bad row, Chinese text; the progress bar fed by polling while a larger
file runs), the merge of two customers, the 360 view and the envelope page. Screenshots go to
tests/_artifacts/."""
import re
import time

import openpyxl
import pytest

from crm.core import auth
from crm.core.app import make_app
from crm.hooks import hookimpl
from tests.browser import ARTIFACTS, chromium, login, new_page, playwright_api, served, sqlite_runtime

PASSWORD = "browser-pass-2"


@pytest.fixture(scope="module")
def api():
    return playwright_api()


@pytest.fixture(scope="module")
def server(tmp_path_factory, api):
    runtime = sqlite_runtime(tmp_path_factory.mktemp("customers-browser"))
    with runtime.transaction() as records:
        auth.create_user(records.session, "admin", PASSWORD, admin=True, display_name="王管理", now=records.now())
    with served(make_app(runtime)) as base:
        yield runtime, base
    runtime.dispose()


@pytest.fixture(scope="module")
def browser(api):
    with chromium(api) as browser:
        yield browser


@pytest.fixture
def page(browser, server):
    errors = []
    page = new_page(browser, errors)
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, server[1], "admin", PASSWORD)
    yield page
    page.context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def workbook(path, rows, headers=("客户名称", "主要电话", "所属区域", "客户级别", "员工数量", "备注")):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def test_import_wizard(page, server, tmp_path):
    runtime, base = server
    expect = playwright_api().expect
    with runtime.transaction(user={"id": 1, "is_admin": True}) as records:
        records.create("customer", {"name": "广州市人易软件技术有限公司", "phone": "020-1"})
    path = workbook(tmp_path / "客户资料.xlsx", [
        ("广州市人易软件技术有限公司", "020-88886666", "广东", "A", 50, "已存在：按名称查重会跳过或更新"),
        ("北京华夏科技有限公司", "010-12345678", "北京", "B", 12, "展会认识"),
        ("北京华夏科技有限公司", "010-12345678", "北京", "B", 12, "文件内重复"),
        ("火星贸易有限公司", "000", "火星", "A", "很多", "区域和员工数都不对"),
        ("上海东方贸易公司", "021-5555", "上海", "C", 8, "重点客户，月底回访"),
    ])
    page.goto(base + "/app/customer")
    page.click("#list-import")
    page.wait_for_url(base + "/app/customer/import")
    page.set_input_files("#import-file", str(path))
    with page.expect_navigation():
        page.click("#import-upload button[type=submit]")
    expect(page.locator("h1")).to_contain_text("客户资料.xlsx")
    expect(page.locator("select[data-column='客户名称']")).to_have_value("name")     # mapped by label
    expect(page.locator("select[data-column='备注']")).to_have_value("remark")
    page.select_option("select[data-column='员工数量']", "")                         # the user leaves a column out
    expect(page.locator("input[name=match][value=name]")).to_be_checked()
    shot(page, "import-mapping")

    page.click("#import-check")                       # dry run (sent by fetch; the report replaces the page)
    expect(page.locator("#import-summary h2")).to_have_text("试运行：未保存任何数据")
    assert re.search(r"/app/customer/import/[\w-]+/report$", page.url)
    counts = {k: page.locator(f"[data-count={k}] .count-number").inner_text() for k in ("created", "updated", "skipped", "error")}
    assert counts == {"created": "2", "updated": "0", "skipped": "2", "error": "1"}
    expect(page.locator("tr[data-row='4']")).to_contain_text("与文件第 3 行的客户名称相同")
    expect(page.locator("tr[data-row='5']")).to_contain_text("所属区域：“火星”不在可选值中")
    shot(page, "import-dry-run")
    with page.expect_download() as download:
        page.click("#import-errors")
    saved = tmp_path / "errors.xlsx"
    download.value.save_as(saved)
    rows = list(openpyxl.load_workbook(saved).active.iter_rows(values_only=True))
    assert rows[0][-1] == "错误 / error" and rows[1][0] == "火星贸易有限公司"
    with runtime.transaction() as records:
        assert records.list("customer", count=True).total == 1                       # nothing saved yet

    with page.expect_navigation():
        page.click("a:has-text('修改选择')")
    page.check("input[name=mode][value=upsert]")
    page.check("input[name=partial]")
    page.click("#import-run")                                                        # confirm dialog accepted
    expect(page.locator(".flash-success")).to_contain_text("导入完成")
    expect(page.locator("[data-count=created] .count-number")).to_have_text("2")
    expect(page.locator("[data-count=updated] .count-number")).to_have_text("2")
    shot(page, "import-result")
    with runtime.transaction() as records:
        found = {c["name"]: c for c in records.list("customer").items}
    assert set(found) == {"广州市人易软件技术有限公司", "北京华夏科技有限公司", "上海东方贸易公司"}
    assert found["广州市人易软件技术有限公司"]["phone"] == "020-88886666" and found["上海东方贸易公司"]["level"] == "C"
    assert found["北京华夏科技有限公司"]["employee_count"] is None                  # the column left out

    with page.expect_navigation():
        page.click("#import-revert")
    expect(page.locator(".flash-success")).to_contain_text("已撤销导入")
    with runtime.transaction() as records:
        assert [c["phone"] for c in records.list("customer").items] == ["020-1"]


class SlowCreates:
    """Makes each customer take a few milliseconds, so that the import of 900 rows (batches of
    500) lasts long enough for the page to show the progress between two batches."""

    @hookimpl
    def crm_before_create(self, ctx, entity, values):
        if entity.name == "customer":
            time.sleep(0.005)


@pytest.fixture
def slow_creates(server):
    plugins = server[0].plugins.pm
    plugins.register(SlowCreates(), name="slow_creates")
    yield
    plugins.unregister(name="slow_creates")


def test_import_progress_is_polled_while_a_larger_file_runs(page, server, tmp_path, slow_creates):
    runtime, base = server
    rows = [(f"进度测试客户{i:04d}", f"0{i:04d}", "北京", "B", i, "批量") for i in range(900)]
    path = workbook(tmp_path / "大批量.xlsx", rows)
    page.goto(base + "/app/customer/import")
    page.set_input_files("#import-file", str(path))
    with page.expect_navigation():
        page.click("#import-upload button[type=submit]")
    page.click("#import-check")
    page.wait_for_function("() => { const b = document.getElementById('import-progress-bar');"
                           " return b && b.value > 0 && b.value < 900; }", timeout=60000)
    expect = playwright_api().expect
    expect(page.locator("[data-progress-box]")).to_be_visible()
    assert re.fullmatch(r"\d+ / 900", page.locator("[data-progress-text]").inner_text())
    shot(page, "import-progress")
    expect(page.locator("[data-count=created] .count-number")).to_have_text("900", timeout=120000)


def test_merge_two_customers(page, server):
    runtime, base = server
    expect = playwright_api().expect
    with runtime.transaction(user={"id": 1, "is_admin": True}) as records:
        keep = records.create("customer", {"name": "深圳前海物流有限公司", "phone": "0755-1"})
        dup = records.create("customer", {"name": "深圳前海物流", "phone": "0755-2", "address": "深圳市南山区前海路8号"})
        records.create("contact", {"name": "陈主管", "customer_id": dup["id"]})
        records.create("follow_up", {"customer_id": dup["id"], "subject": "合并前的跟进", "type": "phone",
                                     "occurred_at": "2026-11-20T10:00:00"})
    page.goto(f"{base}/app/customer/{keep['id']}")
    page.click("#action-merge")
    page.wait_for_url(f"{base}/app/customer/{keep['id']}/merge")
    page.fill("#merge-search", "szqhwl")                                              # pinyin initials
    option = page.locator("#merge-list [role=option]", has_text="深圳前海物流").filter(has_not_text="有限公司").first
    expect(option).to_be_visible()
    option.click()
    with page.expect_navigation():
        page.click("#merge-compare")
    expect(page.locator(".merge-moves")).to_contain_text("联系人 · 所属客户")
    expect(page.locator(".merge-moves")).to_contain_text("跟进记录 · 客户")
    page.check("tr[data-field=phone] input[value=theirs]")
    page.check("tr[data-field=address] input[value=theirs]")
    shot(page, "merge")
    with page.expect_navigation():
        page.click("#merge-confirm")
    expect(page.locator(".flash-success")).to_contain_text("已合并")
    expect(page.locator("[data-field=phone] dd")).to_have_text("0755-2")
    page.click("[role=tab]:has-text('联系人')")
    expect(page.locator("[data-related=contact]")).to_contain_text("陈主管")
    page.click("#tab-history")
    expect(page.locator("#panel-history")).to_contain_text(f"#{dup['id']}")
    with runtime.transaction() as records:
        assert records.list("follow_up", filters=[("customer_id", "eq", keep["id"])]).items[0]["subject"] == "合并前的跟进"


def test_360_view_and_envelope(page, server):
    runtime, base = server
    expect = playwright_api().expect
    with runtime.transaction(user={"id": 1, "is_admin": True}) as records:
        acme = records.create("customer", {"name": "杭州西湖软件有限公司", "level": "A", "credit_rating": 5, "owner_id": 1,
                                           "address": "杭州市西湖区文三路100号", "postcode": "310012"})
        records.set_derived("customer", acme["id"], {"deal_count": 4, "deal_amount": 256000})
        records.create("contact", {"name": "赵总", "customer_id": acme["id"], "title": "总经理"})
        records.create("follow_up", {"customer_id": acme["id"], "subject": "季度回访", "type": "visit",
                                     "occurred_at": "2026-11-19T14:00:00"})
        records.create("customer", {"name": "西湖软件宁波分公司", "parent_customer_id": acme["id"]})
    page.goto(f"{base}/app/customer/{acme['id']}")
    with page.expect_navigation():
        page.click("#action-overview")
    expect(page.locator("h1")).to_contain_text("客户全景图")
    expect(page.locator("[data-figure=deal_amount]")).to_contain_text("256,000.00")
    expect(page.locator("[data-figure=owner_id]")).to_contain_text("王管理")
    expect(page.locator("[data-section='contact.customer_id']")).to_contain_text("赵总")
    expect(page.locator("[data-section='follow_up.customer_id']")).to_contain_text("季度回访")
    expect(page.locator("[data-section='customer.parent_customer_id']")).to_contain_text("西湖软件宁波分公司")
    shot(page, "customer-360")
    page.goto(f"{base}/app/customer/{acme['id']}")
    with page.expect_navigation():
        page.click("#action-envelope")
    expect(page.locator(".envelope .recipient")).to_contain_text("赵总 总经理 收")
    assert "".join(page.locator(".postcode .digit").all_inner_texts()) == "310012"
    shot(page, "envelope")
