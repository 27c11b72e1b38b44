"""Sharing a record in a real browser when there are too many people to list: the share form's
user picker searches as you type (Chromium, as tests/test_browser.py)."""
from crm.core import auth
from crm.core.app import make_app
from crm.core.web.pages import helpers
from tests.browser import chromium, login, new_page, playwright_api, served, sqlite_runtime

PASSWORD = "browser-pass-1"


def test_sharing_with_a_user_found_by_searching(tmp_path):
    api = playwright_api()
    runtime = sqlite_runtime(tmp_path)
    with runtime.transaction() as records:
        admin = auth.create_user(records.session, "admin", PASSWORD, admin=True, display_name="王管理", now=records.now())
        people = [auth.create_user(records.session, f"rep{i:03d}", PASSWORD, display_name=f"销售{i:03d}", now=records.now())
                  for i in range(helpers.CHOICES_LIMIT + 1)]
    with runtime.transaction(user={"id": admin, "is_admin": True}) as records:
        record = records.create("customer", {"name": "共享测试有限公司", "owner_id": admin})
    errors = []
    try:
        with served(make_app(runtime)) as base, chromium(api) as browser:
            page = new_page(browser, errors)
            login(page, base, "admin", PASSWORD)
            page.goto(f"{base}/app/customer/{record['id']}")
            page.click("#tab-sharing")
            assert page.locator("#share-form option").count() == 2      # only the access levels
            page.fill("#share-user", "销售150")
            option = page.locator("#share-user-list [role=option]").first
            api.expect(option).to_contain_text("销售150")
            option.click()
            api.expect(page.locator("#share-form input[name=user]")).to_have_value(str(people[150]))
            page.click("#share-form button[type=submit]")
            page.wait_for_url(f"{base}/app/customer/{record['id']}#sharing")
            api.expect(page.locator("#share-table tbody tr")).to_contain_text("销售150")
            page.context.close()
    finally:
        runtime.dispose()
    assert not errors, f"JavaScript errors: {errors}"
