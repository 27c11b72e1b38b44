"""Administration and sharing pages through HTTP (WebTest over ``make_app``), on SQLite and
PostgreSQL: departments (a tree of any depth, moves with a cycle check, deactivation), users
(create, edit, disable, unlock), roles (scopes per entity and action, field permissions, special
permissions) and who may manage them, sharing on a record's detail page, and CSRF on every form."""
import pytest
import sqlalchemy as sa

from crm.core import access, auth, directory
from crm.core.tables import departments, roles, shares, users
from tests.api_fixtures import PASSWORD, create_user
from tests.test_pages import Site, text_of


@pytest.fixture
def office(make_runtime):
    runtime = make_runtime()
    create_user(runtime, "admin", display_name="管理员")
    site = Site(runtime)
    site.login("admin")
    return site


def form_error(page, field_id):
    """The message beside a form field (the .field-error of the field holding #field_id)."""
    field = page.html.select_one(f"#{field_id}").find_parent(class_="field")
    error = field.select_one(".field-error")
    return error.text.strip() if error else None


def department_ids(runtime):
    with runtime.transaction(write=False) as records:
        return dict(records.session.execute(sa.select(departments.c.name, departments.c.id)).all())


def user_id(runtime, username):
    with runtime.transaction(write=False) as records:
        return auth.get_user(records.session, username=username)["id"]


# --- departments ------------------------------------------------------------------------------------

def test_departments_tree_of_any_depth_moves_with_a_cycle_check_and_deactivation(office):
    rt = office.runtime
    office.post("/app/admin/departments", {"name": "集团"})
    chain = ["集团"]
    for name in ("华南分公司", "广州办事处", "天河小组", "一班"):          # five levels
        office.post("/app/admin/departments", {"name": name, "parent_id": department_ids(rt)[chain[-1]]})
        chain.append(name)
    office.post("/app/admin/departments", {"name": "华东分公司", "parent_id": department_ids(rt)["集团"]})
    page = office.get("/app/admin/departments")
    rows = [(tr["data-department"], int(tr["data-depth"])) for tr in page.html.select("#department-tree tbody tr")]
    assert rows == [("集团", 0), ("华东分公司", 1), ("华南分公司", 1), ("广州办事处", 2), ("天河小组", 3), ("一班", 4)]

    ids = department_ids(rt)
    same = office.app.post("/app/admin/departments", {"name": "广州办事处", "parent_id": ids["华南分公司"], "csrf_token": office.csrf}, status=422)
    assert form_error(same, "department-name") == "这个名称已被使用。"
    loop = office.app.post(f"/app/admin/departments/{ids['华南分公司']}", {"name": "华南分公司", "parent_id": ids["天河小组"],
                                                                       "active": "1", "csrf_token": office.csrf}, status=422)
    assert form_error(loop, "department-parent") == "这样会形成循环。"
    edit_page = office.get(f"/app/admin/departments/{ids['华南分公司']}")
    offered = {o.text.strip() for o in edit_page.html.select("#department-parent option")}
    assert "华东分公司" in offered and not offered & {"华南分公司", "广州办事处", "天河小组", "一班"}   # not under itself

    office.post(f"/app/admin/departments/{ids['广州办事处']}", {"name": "广州办事处（新）", "parent_id": ids["华东分公司"], "active": "1"})
    office.post(f"/app/admin/departments/{ids['一班']}", {"name": "一班", "parent_id": ids["天河小组"]})  # unchecked: deactivated
    with rt.transaction(write=False) as records:
        tree = {d["name"]: d for d in directory.department_tree(records.session)}
    assert tree["广州办事处（新）"]["path"] == ["集团", "华东分公司", "广州办事处（新）"] and tree["一班"]["depth"] == 4
    assert not tree["一班"]["active"]
    new_user = office.get("/app/admin/users/new")
    assert "一班" not in {o.text.strip() for o in new_user.html.select("#user-department option")}
    assert "停用" in office.get("/app/admin/departments").html.select_one("tr[data-department='一班']").text


# --- users ------------------------------------------------------------------------------------------

def test_create_edit_and_disable_users(office):
    rt = office.runtime
    office.post("/app/admin/departments", {"name": "销售部"})
    dept = department_ids(rt)["销售部"]
    boss = user_id(rt, "admin")
    form = {"username": "lina", "display_name": "李娜", "email": "lina@example.cn", "phone": "13800000000",
            "password": "long-enough-1", "password_again": "long-enough-2", "department_id": dept, "manager_id": boss,
            "roles": ["sales_rep"]}
    differ = office.app.post("/app/admin/users/new", {**form, "csrf_token": office.csrf}, status=422)
    assert form_error(differ, "user-password_again") == "两次输入的密码不一致。"
    assert differ.html.select_one("#user-display_name")["value"] == "李娜"          # the input is kept
    assert differ.html.select_one("#user-department option[selected]").text.strip() == "销售部"
    ghost = office.app.post("/app/admin/users/new", {**form, "password_again": "long-enough-1", "roles": ["no_such_role"],
                                                      "csrf_token": office.csrf}, status=422)
    assert "未知的值" in ghost.text
    with rt.transaction(write=False) as records:     # all or nothing: no user without their roles
        assert auth.get_user(records.session, username="lina") is None
    created = office.post("/app/admin/users/new", {**form, "password_again": "long-enough-1"})
    lina = user_id(rt, "lina")
    assert created.location.endswith(f"/app/admin/users/{lina}")
    taken = office.app.post("/app/admin/users/new", {**form, "password_again": "long-enough-1", "csrf_token": office.csrf}, status=422)
    assert form_error(taken, "user-username") == "这个名称已被使用。"
    short = office.app.post("/app/admin/users/new", {**form, "username": "wf", "password": "x", "password_again": "x",
                                                      "csrf_token": office.csrf}, status=422)
    assert form_error(short, "user-password") == "至少 8 个字符。"

    listed = office.get("/app/admin/users")
    row = listed.html.select_one("tr[data-user='lina']")
    assert "李娜" in row.text and "销售部" in row.text and "管理员" in row.text and "sales_rep" in row.text
    assert row.select_one("a[href*='/app/admin/access']")["href"] == f"/app/admin/access?user={lina}&entity=customer"
    assert text_of(office.get("/app/admin/users", params={"q": "13800000000"}), "#users-table tbody tr td:first-child") == ["李娜"]

    office.post(f"/app/admin/users/{lina}", {"display_name": "李娜", "department_id": dept, "manager_id": "",
                                            "roles": ["sales_manager", "viewer"], "active": "1"})
    with rt.transaction(write=False) as records:
        detail = directory.user_detail(records.session, lina)
    assert detail["roles"] == ["sales_manager", "viewer"] and detail["manager_id"] is None and detail["email"] is None
    myself = office.app.post(f"/app/admin/users/{boss}", {"display_name": "管理员", "is_admin": "1", "csrf_token": office.csrf}, status=422)
    assert form_error(myself, "user-active") == "不能对自己的账户这样做。"

    assert Site(rt).login("lina", "long-enough-1").status_int == 302
    office.post(f"/app/admin/users/{lina}", {"display_name": "李娜", "department_id": dept, "roles": ["sales_rep"]})  # not active
    assert "停用" in Site(rt).login("lina", "long-enough-1").text
    assert "停用" in office.get("/app/admin/users", params={"state": "inactive"}).html.select_one("tr[data-user='lina']").text


def test_unlock_from_the_user_list_and_page(make_runtime):
    rt = make_runtime(**{"crm.login.max_failures": "2"})
    create_user(rt, "admin")
    create_user(rt, "lina", admin=False)
    for _ in range(2):
        Site(rt).login("lina", "wrong-password")
    admin = Site(rt)
    admin.login("admin")
    assert "锁定至" in admin.get("/app/admin/users").html.select_one("tr[data-user='lina']").text
    admin.post(f"/app/admin/users/{user_id(rt, 'lina')}/unlock", {})
    assert Site(rt).login("lina").status_int == 302


# --- who may manage ---------------------------------------------------------------------------------

ADMIN_PAGES = ["/app/admin/users", "/app/admin/users/new", "/app/admin/departments", "/app/admin/roles",
               "/app/admin/roles/new", "/app/admin/access"]


def test_only_administrators_and_user_managers_reach_the_admin_pages(office):
    rt = office.runtime
    with rt.transaction() as records:
        access.save_role(records.session, "hr", {"zh_CN": "人事"}, {"entities": {"*": {"read": "all"}}, "permissions": ["users.manage"]})
        directory.add_user(records.session, "hr_wang", PASSWORD, now=records.now(), role_names=["hr"])
        directory.add_user(records.session, "rep", PASSWORD, now=records.now(), role_names=["sales_rep"])
    rep = Site(rt)
    rep.login("rep")
    for url in ADMIN_PAGES + [f"/app/admin/users/{user_id(rt, 'hr_wang')}", "/app/admin/departments/1"]:
        assert rep.get(url, status=403), url
    rep.post("/app/admin/departments", {"name": "偷建的部门"}, status=403)
    assert "用户" not in text_of(rep.get("/app"), ".sidebar a")

    hr = Site(rt)
    hr.login("hr_wang")
    for url in ADMIN_PAGES:
        hr.get(url)
    menu = text_of(hr.get("/app"), ".sidebar a")
    assert {"用户", "部门", "角色", "有效权限"} <= set(menu)
    assert hr.get("/app/admin/users/new").html.select_one("#user-admin") is None      # no administrator checkbox
    hr.post("/app/admin/users/new", {"username": "newbie", "password": "long-enough-1", "password_again": "long-enough-1",
                                     "is_admin": "1", "roles": ["viewer"]})            # a forged flag is ignored
    with rt.transaction(write=False) as records:
        assert auth.get_user(records.session, username="newbie")["is_admin"] is False
    admin_id = user_id(rt, "admin")
    hr.get(f"/app/admin/users/{admin_id}", status=403)                                  # administrators are out of reach
    hr.post(f"/app/admin/users/{admin_id}/password", {"password": "taken-over-1", "password_again": "taken-over-1"}, status=403)


# --- roles ------------------------------------------------------------------------------------------

def test_role_editor_scopes_fields_permissions_and_what_it_keeps(office):
    rt = office.runtime
    with rt.transaction() as records:   # rules for an entity no enabled plugin defines: the editor must keep them
        access.save_role(records.session, "east_rep", {"zh_CN": "华东销售"},
                         {"entities": {"retired_plugin_entity": {"read": "all"}}, "fields": {"retired_plugin_entity": {"x": "hidden"}},
                          "permissions": ["retired.permission"]})
        lina = directory.add_user(records.session, "lina", PASSWORD, now=records.now(), role_names=["east_rep"])
    with rt.transaction(write=False) as records:
        role_id = records.session.execute(sa.select(roles.c.id).where(roles.c.name == "east_rep")).scalar()
    page = office.get(f"/app/admin/roles/{role_id}")
    assert page.html.select_one("#scope-customer-read") is not None and page.html.select_one("#field-customer-phone") is not None
    assert {i["value"] for i in page.html.select("input[name=permissions]")} >= {"recycle_bin", "users.manage"}
    office.post(f"/app/admin/roles/{role_id}", {
        "label.zh_CN": "华东销售", "label.en": "East sales", "scope.*.read": "all",
        "scope.customer.read": "own", "scope.customer.create": "all", "scope.customer.update": "own", "scope.customer.export": "none",
        "field.customer.phone": "hidden", "field.customer.credit_limit": "readonly", "permissions": ["recycle_bin"]})
    with rt.transaction(write=False) as records:
        rules = records.session.execute(sa.select(roles.c.rules).where(roles.c.id == role_id)).scalar()
    assert rules["entities"]["customer"] == {"read": "own", "create": "all", "update": "own", "export": "none"}
    assert rules["entities"]["*"] == {"read": "all"} and rules["entities"]["retired_plugin_entity"] == {"read": "all"}
    assert rules["fields"] == {"customer": {"phone": "hidden", "credit_limit": "readonly"}, "retired_plugin_entity": {"x": "hidden"}}
    assert rules["permissions"] == ["recycle_bin", "retired.permission"]

    explained = office.get("/app/admin/access", params={"user": lina, "entity": "customer"})
    scopes = {tr.select("td")[0].text: tr.select("td")[1].text for tr in explained.html.select("section.card table tbody tr")[:8]}
    assert scopes["查看"] == "本人（及下属）的记录" and scopes["导出"] == "无权限" and scopes["新建"] == "全部记录"
    assert explained.html.select_one(f"a[href='/app/admin/users/{lina}']") is not None
    phone = next(tr for tr in explained.html.select("tbody tr") if tr.select_one("code") is not None and tr.select_one("code").text == "phone")
    assert "隐藏" in phone.text

    rep = Site(rt)
    rep.login("lina")
    rep.get("/app/trash")                                           # recycle_bin granted
    assert "主要电话" not in rep.get("/app/customer/new").text        # phone hidden

    bad = office.app.post("/app/admin/roles/new", {"name": "Bad Name", "label.zh_CN": "", "csrf_token": office.csrf}, status=422)
    assert form_error(bad, "role-name") == "小写字母、数字和下划线，以字母开头。" and "必填" in bad.text
    clash = office.app.post("/app/admin/roles/new", {"name": "east_rep", "label.zh_CN": "重名", "csrf_token": office.csrf}, status=422)
    assert form_error(clash, "role-name") == "这个名称已被使用。"
    created = office.post("/app/admin/roles/new", {"name": "temp_role", "label.zh_CN": "临时", "scope.product.read": "all"})
    temp_id = int(created.location.rsplit("/", 1)[1])
    office.post(f"/app/admin/roles/{temp_id}/delete", {})
    assert office.get("/app/admin/roles").html.select_one("tr[data-role='temp_role']") is None
    default_id = next(int(tr.select_one("a")["href"].rsplit("/", 1)[1]) for tr in office.get("/app/admin/roles").html.select("tr[data-role='viewer']"))
    office.post(f"/app/admin/roles/{default_id}/delete", {})
    assert office.get("/app/admin/roles").html.select_one("tr[data-role='viewer']") is not None   # default roles stay


# --- sharing on the detail page -----------------------------------------------------------------------

@pytest.fixture
def reps(office):
    rt = office.runtime
    with rt.transaction() as records:
        s, now = records.session, records.now()
        team = directory.create_department(s, "销售二组")
        ids = {name: directory.add_user(s, name, PASSWORD, now=now, role_names=roles, department_id=dept)
               for name, roles, dept in (("rep1", ["sales_rep"], None), ("rep2", ["sales_rep"], None),
                                         ("rep3", ["sales_rep"], team), ("viewer", ["viewer"], None))}
        record = records.create("customer", {"name": "甲公司", "owner_id": ids["rep1"]})
    sites = {}
    for name in ids:
        sites[name] = Site(rt)
        sites[name].login(name)
    return sites, ids, record, team


def test_sharing_a_record_with_a_user_and_a_department_then_revoking(reps):
    sites, ids, record, team = reps
    url = f"/app/customer/{record['id']}"
    sites["rep2"].get(url, status=404)
    owner = sites["rep1"].get(url)
    assert owner.html.select_one("#panel-sharing") is not None and "尚未共享" in owner.text
    sites["rep1"].post(url + "/shares", {"whom": f"user:{ids['rep2']}", "access": "read"})
    assert "甲公司" in sites["rep2"].get(url).text
    assert sites["rep2"].get(url).html.select_one("#panel-sharing") is None          # readers do not manage shares
    form = sites["rep2"].get(url + "/edit").forms["record-form"]
    form["name"] = "乙改名"
    form.submit(status=403)
    sites["rep2"].post(url + "/shares", {"whom": f"user:{ids['rep3']}", "access": "edit"}, status=403)

    sites["rep1"].post(url + "/shares", {"whom": f"user:{ids['rep2']}", "access": "edit"})   # replaces the read share
    rows = sites["rep1"].get(url).html.select("#share-table tbody tr")
    assert len(rows) == 1 and "rep2" in rows[0].text and "可查看和修改" in rows[0].text
    form = sites["rep2"].get(url + "/edit").forms["record-form"]
    form["name"] = "甲公司（改）"
    form.submit(status=302)
    assert "甲公司（改）" in sites["rep2"].get(url).text
    assert sites["rep2"].get(url).html.select_one("#panel-sharing") is not None     # an editor may share on

    sites["rep3"].get(url, status=404)
    sites["rep1"].post(url + "/shares", {"whom": f"department:{team}", "access": "read"})
    sites["rep3"].get(url)
    bad = sites["rep1"].post(url + "/shares", {"whom": "user:999999", "access": "read"})
    assert "请选择一个用户或部门" in sites["rep1"].get(bad.location).text
    sites["rep1"].post(url + "/shares", {"whom": f"user:{ids['rep3']}", "access": "everything"})
    with sites["rep1"].runtime.transaction(write=False) as records:
        assert records.session.execute(sa.select(sa.func.count()).select_from(shares)).scalar() == 2

    page = sites["rep1"].get(url)
    history = page.html.select_one("#panel-history").text
    assert "共享" in history and "rep2: edit" in history and "销售二组: read" in history
    for form in page.html.select("#share-table form"):
        sites["rep1"].post(form["action"], {})
    sites["rep2"].get(url, status=404)
    sites["rep3"].get(url, status=404)
    assert "撤销共享" in sites["rep1"].get(url).html.select_one("#panel-history").text
    sites["rep1"].post(url + "/shares/999999/revoke", {}, status=404)


def test_people_who_may_not_change_a_record_cannot_share_it(reps):
    sites, ids, record, _team = reps
    url = f"/app/customer/{record['id']}"
    page = sites["viewer"].get(url)                       # reads every customer, changes none
    assert page.html.select_one("#panel-sharing") is None and page.html.select_one("#tab-sharing") is None
    sites["viewer"].post(url + "/shares", {"whom": f"user:{ids['viewer']}", "access": "edit"}, status=403)
    sites["rep2"].post(url + "/shares", {"whom": f"user:{ids['rep2']}", "access": "edit"}, status=404)   # cannot see it
    with sites["rep1"].runtime.transaction(write=False) as records:
        assert records.session.execute(sa.select(sa.func.count()).select_from(shares)).scalar() == 0


# --- CSRF ----------------------------------------------------------------------------------------------

def test_form_posts_without_the_csrf_token_are_rejected_everywhere(reps):
    sites, ids, record, team = reps
    admin = Site(sites["rep1"].runtime)
    admin.login("admin")
    rep1 = sites["rep1"]
    with admin.runtime.transaction(write=False) as records:
        role_id = records.session.execute(sa.select(roles.c.id).where(roles.c.name == "viewer")).scalar()
    rid = record["id"]
    posts = [
        (rep1, "/logout", {}),
        (rep1, "/locale", {"locale": "en"}),
        (rep1, "/app/customer/new", {"name": "伪造客户"}),
        (rep1, f"/app/customer/{rid}/edit", {"name": "伪造改名", "version": record["version"]}),
        (rep1, f"/app/customer/{rid}/delete", {}),
        (rep1, f"/app/customer/{rid}/shares", {"whom": f"user:{ids['rep2']}", "access": "edit"}),
        (rep1, "/app/account/password", {"current_password": PASSWORD, "password": "forged-pass-1", "password_again": "forged-pass-1"}),
        (rep1, "/app/account/tokens", {"name": "伪造令牌"}),
        (admin, "/app/trash/restore", {"entity": "customer", "id": rid}),
        (admin, "/app/admin/users/new", {"username": "forged", "password": "forged-pass-1", "password_again": "forged-pass-1"}),
        (admin, f"/app/admin/users/{ids['rep2']}", {"display_name": "伪造", "active": "1"}),
        (admin, f"/app/admin/users/{ids['rep2']}/password", {"password": "forged-pass-1", "password_again": "forged-pass-1"}),
        (admin, f"/app/admin/users/{ids['rep2']}/unlock", {}),
        (admin, "/app/admin/departments", {"name": "伪造部门"}),
        (admin, f"/app/admin/departments/{team}", {"name": "伪造改名"}),
        (admin, "/app/admin/roles/new", {"name": "forged", "label.zh_CN": "伪造"}),
        (admin, f"/app/admin/roles/{role_id}", {"label.zh_CN": "伪造", "scope.*.read": "none"}),
    ]
    for site, url, params in posts:
        for token in (None, "forged-token"):
            body = dict(params, **({"csrf_token": token} if token else {}))
            page = site.app.post(url, body, status=400)
            assert "表单已过期" in page.text, url
    login_page = Site(admin.runtime)
    login_page.get("/login")
    login_page.app.post("/login", {"username": "rep1", "password": PASSWORD}, status=400)   # the login form too
    with admin.runtime.transaction(write=False) as records:
        s = records.session
        assert s.execute(sa.select(sa.func.count()).select_from(shares)).scalar() == 0
        assert auth.get_user(s, username="forged") is None
        assert auth.verify_password(auth.get_user(s, username="rep1")["password_hash"], PASSWORD)
        assert auth.verify_password(auth.get_user(s, username="rep2")["password_hash"], PASSWORD)
        assert auth.get_user(s, username="rep2")["display_name"] == "rep2"
        assert set(department_ids(admin.runtime)) == {"销售二组"}
        assert s.execute(sa.select(roles.c.label).where(roles.c.id == role_id)).scalar() == access.DEFAULT_ROLES["viewer"]["label"]
        assert s.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 5
        assert records.list("customer", q="伪造").items == [] and records.get("customer", rid)["name"] == "甲公司"
    assert "甲公司" in rep1.get(f"/app/customer/{rid}").text          # still logged in: the logout was refused too


# --- in a real browser -----------------------------------------------------------------------------------

def test_browser_an_admin_builds_a_team_and_the_new_user_sees_only_what_the_role_allows(tmp_path):
    """In Debian's Chromium (Playwright): the administrator creates a department under another, a
    role (own customers, phone hidden, nothing else), a user in the department with that role, and
    shares one customer with her; she logs in and sees exactly that."""
    from crm.core.app import make_app
    from tests import browser as b
    sync_api = b.playwright_api()
    expect = sync_api.expect
    runtime = b.sqlite_runtime(tmp_path)
    with runtime.transaction() as records:
        auth.create_user(records.session, "admin", "password-admin", admin=True, display_name="王管理", now=records.now())
    with runtime.transaction(user={"id": 1, "is_admin": True}) as records:
        records.create("customer", {"name": "总部大客户", "phone": "13900000001", "owner_id": 1})
        shared = records.create("customer", {"name": "共享给小李的客户", "phone": "13912345678", "owner_id": 1})
        records.create("contact", {"name": "总部联系人", "customer_id": shared["id"]})
    errors = []

    def submit(page, selector):
        with page.expect_navigation():
            page.click(selector)

    try:
        with b.served(make_app(runtime)) as base, b.chromium(sync_api) as browser:
            page = b.new_page(browser, errors)
            b.login(page, base, "admin", "password-admin")
            with page.expect_navigation():
                page.click(".sidebar a:has-text('部门')")
            page.fill("#department-name", "华东区")
            submit(page, "#department-form button[type=submit]")
            page.fill("#department-name", "杭州组")
            page.select_option("#department-parent", label="华东区")
            submit(page, "#department-form button[type=submit]")
            expect(page.locator("tr[data-department='杭州组']")).to_have_attribute("data-depth", "1")
            b.ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(b.ARTIFACTS / "admin-departments.png"), full_page=True)

            with page.expect_navigation():
                page.click(".admin-nav a:has-text('角色')")
            submit(page, "#new-role")
            page.fill("#role-name", "hz_rep")
            page.fill("#role-label-zh_CN", "杭州销售")
            customer = page.locator("details[data-entity='customer']")
            customer.locator("> summary").click()
            page.select_option("#scope-customer-read", "own")
            page.select_option("#scope-customer-create", "all")
            page.select_option("#scope-customer-update", "own")
            customer.locator("details.role-fields > summary").click()
            page.select_option("#field-customer-phone", "hidden")
            submit(page, "#role-form button[type=submit]")
            expect(page.locator(".flashes")).to_contain_text("已保存角色 hz_rep")
            page.screenshot(path=str(b.ARTIFACTS / "admin-role.png"), full_page=True)

            with page.expect_navigation():
                page.click(".admin-nav a:has-text('用户')")
            submit(page, "#new-user")
            page.fill("#user-username", "xiaoli")
            page.fill("#user-display_name", "小李")
            page.fill("#user-password", "xiaoli-pass-1")
            page.fill("#user-password_again", "xiaoli-pass-1")
            page.select_option("#user-department", label="\u3000杭州组")
            page.check("input[name=roles][value=hz_rep]")
            submit(page, "#user-form button[type=submit]")
            expect(page.locator(".flashes")).to_contain_text("已创建用户 xiaoli")
            page.screenshot(path=str(b.ARTIFACTS / "admin-user.png"), full_page=True)

            page.goto(f"{base}/app/customer/{shared['id']}")
            page.click("#tab-sharing")
            page.select_option("#share-whom", label="小李")
            page.select_option("#share-access", "read")
            submit(page, "#share-form button[type=submit]")
            expect(page.locator(".flashes")).to_contain_text("记录已共享")
            expect(page.locator("#share-table")).to_contain_text("小李")
            submit(page, ".topbar form button[type=submit]:has-text('退出')")

            b.login(page, base, "xiaoli", "xiaoli-pass-1")
            menu = page.locator(".sidebar")
            expect(menu).to_contain_text("客户")
            expect(menu).not_to_contain_text("系统管理")
            expect(menu).not_to_contain_text("联系人")
            with page.expect_navigation():
                page.click(".sidebar a:has-text('客户')")
            expect(page.locator(".row-link")).to_have_count(1)
            expect(page.locator(".row-link")).to_have_text("共享给小李的客户")
            submit(page, ".row-link")
            assert "13912345678" not in page.content() and "总部联系人" not in page.content()
            page.goto(f"{base}/app/customer/new")
            expect(page.locator("#record-form")).to_be_visible()
            assert page.locator("[data-field='phone']").count() == 0
            page.goto(f"{base}/app/admin/users")
            expect(page.locator("main")).to_contain_text("您的角色不允许")
        assert not errors, f"JavaScript errors: {errors}"
    finally:
        runtime.dispose()
