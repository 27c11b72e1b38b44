"""The web UI in a real browser: Playwright driving Debian's Chromium (``/usr/bin/chromium``,
installed by ``.ci/run`` through apt; Playwright downloads nothing) against the app served by
waitress on 127.0.0.1 over a SQLite instance.

One user's afternoon, step by step (issue 3): log in, create a customer with a conditional
field, see validation errors, search by pinyin initials, filter, sort, page, open the detail,
edit with a conflict, move a kanban card, delete and restore. Screenshots of the list, form and
detail pages go to ``tests/_artifacts/`` (git-ignored) for people to look at.
"""
import re
from pathlib import Path

import pytest

from crm.core import auth
from crm.core.app import make_app
from crm.core.web.pages import helpers
from tests.browser import ARTIFACTS, CHROMIUM, chromium, new_page, served, sqlite_runtime

playwright_api = pytest.importorskip("playwright.sync_api")

PASSWORD = "browser-pass-1"
COMPANIES = ["北京华夏科技", "上海东方贸易", "广州南方实业", "深圳前海物流", "杭州西湖软件", "成都天府电子"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app over a fresh SQLite instance, served by waitress in a background thread."""
    assert Path(CHROMIUM).exists(), f"the browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    runtime = sqlite_runtime(tmp_path_factory.mktemp("browser"))
    with runtime.transaction() as records:
        auth.create_user(records.session, "admin", PASSWORD, admin=True, display_name="王管理", now=records.now())
    with runtime.transaction(user={"id": 1, "is_admin": True}) as records:
        records.create("customer", {"name": "广州市人易软件技术有限公司", "category": "existing_end", "status": "new",
                                    "phone": "020-88886666"})
        for i in range(44):
            records.create("customer", {"name": f"{COMPANIES[i % 6]}{i:02d}有限公司", "status": "following" if i % 3 else "new",
                                        "category": "existing_end" if i % 2 else "potential_end", "owner_id": 1,
                                        "credit_rating": 1 + i % 5, "employee_count": 10 * i})
    with served(make_app(runtime)) as base:
        yield runtime, base
    runtime.dispose()


@pytest.fixture(scope="module")
def browser():
    with chromium(playwright_api) as browser:
        yield browser


@pytest.fixture
def page(browser, server):
    errors = []
    page = new_page(browser, errors)
    yield page
    page.context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def follow(page, selector):
    """Click a link or button that loads another page, and wait until it has loaded."""
    with page.expect_navigation():
        page.click(selector)


def login(page, base):
    page.goto(base + "/")
    assert page.url.endswith("/login")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + "/app")
    assert "王管理" in page.inner_text(".topbar")


def test_a_sales_afternoon(page, server):
    runtime, base = server
    expect = playwright_api.expect
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, base)

    # --- create a customer with a conditional field; validation errors first ---------------------
    page.click(".sidebar a[href='/app/customer']")
    page.click(".page-head a.button-primary")
    page.wait_for_url(base + "/app/customer/new")
    agent = page.locator("#field-agent_level")
    expect(agent).to_be_hidden()
    page.fill("#f-name", "广州市人易软件")                      # 重名提示 while typing
    expect(page.locator("#f-name-similar")).to_be_visible()
    expect(page.locator("#f-name-similar")).to_contain_text("广州市人易软件技术有限公司")
    page.select_option("#f-category", "existing_agent")      # an agent: 代理级别 appears and is required
    expect(agent).to_be_visible()
    expect(agent).to_have_class(re.compile(r"\bis-required\b"))
    page.select_option("#f-category", "existing_end")
    expect(agent).to_be_hidden()
    page.select_option("#f-category", "potential_agent")
    page.fill("#f-name", "")
    page.click("#tab-basic")
    page.click("button:has-text('保存') >> nth=0")
    expect(page.locator("#form-message")).to_be_visible()
    expect(page.locator("#field-name .field-error")).to_have_text("必填")
    expect(page.locator("#field-agent_level .field-error")).to_have_text("必填")
    expect(page.locator("#f-category")).to_have_value("potential_agent")   # input kept
    shot(page, "form-errors")
    page.fill("#f-name", "广州新代理贸易有限公司")
    page.select_option("#f-agent_level", "level_1")
    page.click("#tab-finance")
    page.click("label[for='f-credit_rating-4']")
    page.click("#tab-basic")
    cascade = page.locator("#field-region .region-cascade select")
    cascade.nth(0).select_option(index=1)                    # region cascade: a second level appears
    cascade.nth(1).select_option(index=1)
    shot(page, "form")
    page.click("button:has-text('保存') >> nth=0")
    page.wait_for_url(re.compile(r"/app/customer/\d+$"))
    expect(page.locator("h1")).to_have_text("广州新代理贸易有限公司")
    expect(page.locator("[data-field='agent_level'] dd")).to_have_text("一级代理")
    expect(page.locator("[data-field='credit_rating'] dd")).to_have_text("★★★★☆")
    new_id = int(page.url.rsplit("/", 1)[1])
    with runtime.transaction() as records:
        saved = records.get("customer", new_id)
    assert saved["agent_level"] == "level_1" and saved["region"] and saved["mnemonic"] == "GZXDLMYYXGS"

    # --- a follow-up with a link picker (search as you type, pinyin initials) -----------------------
    page.goto(base + "/app/follow_up/new")
    page.fill("#f-customer_id", "gzxdl")
    option = page.locator("#f-customer_id-list [role=option]").first
    expect(option).to_contain_text("广州新代理贸易有限公司")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("input[name=customer_id]")).to_have_value(str(new_id))
    page.fill("#f-subject", "电话介绍产品")
    page.fill("#f-occurred_at", "2026-11-20T10:30")
    page.click("button:has-text('保存') >> nth=0")
    page.wait_for_url(re.compile(r"/app/follow_up/\d+$"))

    # --- list: pinyin search, filter, sort, paging -------------------------------------------------
    page.goto(base + "/app/customer")
    expect(page.locator("#record-count")).to_have_text("共 46 条")
    shot(page, "list")
    page.fill("#q", "hzxh")                               # 杭州西湖 by its initials
    with page.expect_navigation():
        page.press("#q", "Enter")
    expect(page.locator("#record-count")).to_have_text("共 7 条")
    assert all("杭州西湖软件" in t for t in page.locator(".row-link").all_inner_texts())
    follow(page, ".search-row a:has-text('清除')")
    page.click("summary:has-text('筛选')")
    page.check(".filter-item input[name='category__in'][value='potential_end']")
    follow(page, "button:has-text('查询')")
    expect(page.locator("#record-count")).to_have_text("共 22 条")
    follow(page, "thead a.sort-link:has-text('客户名称')")
    expect(page.locator("th[aria-sort='ascending']")).to_contain_text("客户名称")
    names = page.locator(".row-link").all_inner_texts()
    assert names == sorted(names) and len(names) == 22
    page.goto(base + "/app/customer?limit=20&sort=name")
    first_page = page.locator(".row-link").all_inner_texts()
    follow(page, "a[rel=next]")
    second_page = page.locator(".row-link").all_inner_texts()
    assert len(first_page) == 20 and len(second_page) == 20 and not set(first_page) & set(second_page)
    follow(page, "a[rel=next]")
    assert len(page.locator(".row-link").all_inner_texts()) == 6
    follow(page, "a[rel=prev]")
    assert page.locator(".row-link").all_inner_texts() == second_page
    follow(page, ".pager a:has-text('首页')")
    assert page.locator(".row-link").all_inner_texts() == first_page

    # --- detail, then an edit that meets someone else's change ----------------------------------------
    page.goto(base + "/app/customer?q=gzxdl")
    follow(page, ".row-link")
    page.wait_for_url(f"{base}/app/customer/{new_id}")
    page.click("[role=tab]:has-text('跟进记录')")
    expect(page.locator("[data-related='follow_up']")).to_contain_text("电话介绍产品")
    page.click("#tab-details")
    shot(page, "detail")
    page.click("#action-edit")
    page.wait_for_url(f"{base}/app/customer/{new_id}/edit")
    with runtime.transaction(user={"id": 1, "is_admin": True}) as records:   # a colleague saves meanwhile
        records.update("customer", new_id, {"phone": "020-12345678"})
    page.fill("#f-address", "天河区体育西路 1 号")
    page.click("button:has-text('保存') >> nth=0")
    expect(page.locator("#form-message")).to_contain_text("其他人已保存了这条记录")
    expect(page.locator(".conflict")).to_contain_text("020-12345678")
    page.click("#tab-basic")
    expect(page.locator("#f-address")).to_have_value("天河区体育西路 1 号")   # the input is kept
    shot(page, "form-conflict")
    page.click("button[name=overwrite_version]")
    page.wait_for_url(f"{base}/app/customer/{new_id}")
    with runtime.transaction() as records:
        saved = records.get("customer", new_id)
    assert saved["address"] == "天河区体育西路 1 号" and saved["phone"] == "020-12345678"

    # --- kanban: drag the card to another column -----------------------------------------------------
    page.goto(base + "/app/customer/kanban?q=gzxdl")
    card = page.locator(f".kanban-card[data-id='{new_id}']")
    expect(card).to_be_visible()
    target = page.locator(".kanban-column[data-value='negotiating'] [data-drop]")
    card.drag_to(target, source_position={"x": 6, "y": 6})
    expect(page.locator("[data-kanban-status]")).to_contain_text("商务洽谈")
    expect(page.locator(f".kanban-column[data-value='negotiating'] .kanban-card[data-id='{new_id}']")).to_be_visible()
    shot(page, "kanban")
    with runtime.transaction() as records:
        assert records.get("customer", new_id)["status"] == "negotiating"

    # --- delete and restore -----------------------------------------------------------------------------
    page.goto(f"{base}/app/customer/{new_id}")
    page.click("#action-delete")                          # the confirm dialog is accepted
    page.wait_for_url(base + "/app/customer")
    expect(page.locator(".flash-success")).to_contain_text("已移到回收站")
    page.click(".sidebar a[href='/app/trash']")
    row = page.locator("tr", has_text="广州新代理贸易有限公司")
    expect(row).to_contain_text("王管理")
    row.locator("button:has-text('恢复')").click()
    expect(page.locator(".flash-success")).to_contain_text("已恢复")
    page.goto(f"{base}/app/customer/{new_id}")
    expect(page.locator("h1")).to_have_text("广州新代理贸易有限公司")


def test_keyboard_tabs_language_switch_and_calendar(page, server):
    _runtime, base = server
    expect = playwright_api.expect
    login(page, base)
    page.goto(base + "/app/customer/new")
    page.focus("#tab-basic")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-business")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-business")).to_be_visible()
    expect(page.locator("#panel-basic")).to_be_hidden()
    page.click(".locale-switch button[value=en]")
    expect(page.locator(".topbar")).to_contain_text("Log out")
    expect(page.locator("label[for='f-name']")).to_contain_text("Customer name")
    page.click(".locale-switch button[value=zh_CN]")
    expect(page.locator(".topbar")).to_contain_text("退出")
    page.goto(base + "/app/follow_up/calendar?date=2026-11-20")
    expect(page.locator("td[data-date='2026-11-20']")).to_be_visible()
    shot(page, "calendar")


@pytest.fixture
def crowded_server(tmp_path):
    """More users than a page lists (helpers.CHOICES_LIMIT): the owner is chosen with a picker."""
    runtime = sqlite_runtime(tmp_path)
    with runtime.transaction() as records:
        auth.create_user(records.session, "admin", PASSWORD, admin=True, display_name="王管理", now=records.now())
        reps = [auth.create_user(records.session, f"rep{i:03d}", PASSWORD, display_name=f"销售{i:03d}", now=records.now())
                for i in range(helpers.CHOICES_LIMIT + 1)]
    with runtime.transaction(user={"id": 1, "is_admin": True}) as records:
        ids = [records.create("customer", {"name": name, "status": "new", "owner_id": 1})["id"]
               for name in ("批量甲有限公司", "批量乙有限公司", "批量丙有限公司")]
    with served(make_app(runtime)) as base:
        yield runtime, base, ids, reps
    runtime.dispose()


def test_a_bulk_change_asks_for_the_chosen_fields_input(page, crowded_server):
    runtime, base, ids, reps = crowded_server
    expect = playwright_api.expect
    login(page, base)
    page.goto(base + "/app/customer?sort=name")
    assert page.locator("[data-bulk-value]").count() == 0        # no value input before a field is chosen
    page.check(f"input[name=ids][value='{ids[0]}']")
    page.check(f"input[name=ids][value='{ids[1]}']")
    expect(page.locator("[data-selected-count]")).to_have_text("2")
    page.select_option("#bulk-field", "status")
    page.select_option("select[name='bulk_value.status']", "won")  # waits for list.js to bring it
    follow(page, "button[name=action][value=update]")
    expect(page.locator(".flash-success")).to_contain_text("已修改 2 条记录")

    page.select_option("#bulk-field", "status")
    expect(page.locator("select[name='bulk_value.status']")).to_be_visible()
    page.check(f"input[name=ids][value='{ids[2]}']")
    page.select_option("#bulk-field", "owner_id")                # another field: its input replaces the first
    expect(page.locator("select[name='bulk_value.status']")).to_have_count(0)
    page.fill("#bulk-owner_id", "销售007")                        # a picker, set up after it arrived
    expect(page.locator("#bulk-owner_id-list [role=option]").first).to_contain_text("销售007")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("input[name='bulk_value.owner_id']")).to_have_value(str(reps[7]))
    follow(page, "button[name=action][value=update]")
    expect(page.locator(".flash-success")).to_contain_text("已修改 1 条记录")
    with runtime.transaction() as records:
        saved = {i: records.get("customer", i) for i in ids}
    assert [saved[i]["status"] for i in ids] == ["won", "won", "new"]
    assert [saved[i]["owner_id"] for i in ids] == [1, 1, reps[7]]
