"""Default roles plugins ship (``crm_roles``), seeded by ``crm db upgrade`` with administrators'
edits kept; menu entries that name the permission or entity action they need; the built-in
plugins' roles at work (an expense approved by the default roles alone)."""
import pytest
import sqlalchemy as sa

from crm.core import access, auth, directory as org, plugins, workflow
from crm.core.errors import ConfigurationError
from crm.core.tables import role_seeds, roles
from crm.hooks import hookimpl
from tests.test_pages import site  # noqa: F401 (fixture)

LOYALTY = {"name": "loyalty_tier", "label": {"zh_CN": "会员等级", "en": "Loyalty tier"},
           "fields": {"name": {"type": "text", "required": True}}}


class Loyalty:
    """Ships a role, adds to the core's sales roles, and has menu entries needing a permission
    and an entity action."""

    def __init__(self, extra_permission=False, bad=None):
        self.extra_permission = extra_permission
        self.bad = bad

    @hookimpl
    def crm_metadata(self):
        return [LOYALTY]

    @hookimpl
    def crm_permissions(self):
        return [{"name": "loyalty.adjust", "label": {"zh_CN": "调整会员分值"}}, {"name": "loyalty.report", "label": "报表"}]

    @hookimpl
    def crm_roles(self):
        if self.bad is not None:
            return [self.bad]
        manager_permissions = ["loyalty.adjust"] + (["loyalty.report"] if self.extra_permission else [])
        return [{"name": "loyalty_clerk", "label": {"zh_CN": "会员专员", "en": "Loyalty clerk"},
                 "rules": {"entities": {"*": {"read": "all"}, "loyalty_tier": {"create": "all", "update": "all"}},
                           "permissions": ["loyalty.adjust"]}},
                {"extends": "sales_manager", "rules": {"permissions": manager_permissions,
                                                       "entities": {"loyalty_tier": {"read": "all", "create": "all"}}}},
                {"extends": "sales_rep", "rules": {"entities": {"customer": {"read": "all"}}, "fields": {"customer": {"remark": "readonly"}}}},
                {"extends": "auditor", "rules": {"permissions": ["loyalty.report"]}}]   # not there (yet)

    @hookimpl
    def crm_menu_entries(self):
        return [{"id": "loyalty", "label": "会员", "order": 150},
                {"id": "loyalty.adjust", "label": "调整分值", "url": "/app/loyalty/adjust", "parent": "loyalty",
                 "permission": "loyalty.adjust"},
                {"id": "loyalty.report", "label": "会员报表", "url": "/app/loyalty/report", "parent": "loyalty",
                 "permission": ["loyalty.report", "loyalty.adjust"]},
                {"id": "loyalty.new", "label": "新建等级", "url": "/app/loyalty_tier/new", "parent": "loyalty",
                 "entity": "loyalty_tier", "action": "create"}]


def stored(runtime, name):
    with runtime.engine.connect() as connection:
        return connection.execute(sa.select(roles.c.rules).where(roles.c.name == name)).scalar()


def test_plugin_roles_are_seeded_once_and_edits_are_kept(make_runtime):
    rt = make_runtime(plugins=[("loyalty", Loyalty())], enabled="loyalty")
    clerk = stored(rt, "loyalty_clerk")
    assert clerk["permissions"] == ["loyalty.adjust"] and clerk["entities"]["loyalty_tier"] == {"create": "all", "update": "all"}
    manager = stored(rt, "sales_manager")
    assert manager["permissions"] == ["recycle_bin", "loyalty.adjust"]
    assert manager["entities"]["loyalty_tier"] == {"read": "all", "create": "all"}
    assert manager["entities"]["customer"] == access.DEFAULT_ROLES["sales_manager"]["rules"]["entities"]["customer"]
    rep = stored(rt, "sales_rep")
    assert rep["entities"]["customer"]["read"] == "all"                      # an explicit "own" widened
    assert rep["fields"]["customer"] == {"credit_limit": "readonly", "remark": "readonly"}
    assert stored(rt, "auditor") is None                                     # extending a missing role: skipped
    row = next(r for r in plugins.describe(rt) if r["name"] == "loyalty")     # crm plugins list
    assert row["contributes"]["roles"] == ["loyalty_clerk", "+sales_manager", "+sales_rep", "+auditor"]

    with rt.transaction() as records:                                        # the administrator edits
        s = records.session
        access.save_role(s, "loyalty_clerk", {"zh_CN": "会员专员"}, {"entities": {"*": {"read": "own"}}, "permissions": []})
        manager["permissions"].remove("loyalty.adjust")
        access.save_role(s, "sales_manager", {"zh_CN": "销售经理"}, manager)
        rep["entities"]["customer"]["read"] = "own"
        access.save_role(s, "sales_rep", {"zh_CN": "销售代表"}, rep)
        access.save_role(s, "auditor", {"zh_CN": "审计"}, {"entities": {"*": {"read": "all"}}})
    rt.upgrade()
    assert stored(rt, "loyalty_clerk") == {"entities": {"*": {"read": "own"}}, "permissions": []}   # kept as edited
    assert "loyalty.adjust" not in stored(rt, "sales_manager")["permissions"]                       # removed stays removed
    assert stored(rt, "sales_rep")["entities"]["customer"]["read"] == "own"
    assert stored(rt, "auditor")["permissions"] == ["loyalty.report"]       # the role exists now: added to it

    newer = make_runtime(plugins=[("loyalty", Loyalty(extra_permission=True))], enabled="loyalty")   # the plugin's next version
    assert stored(newer, "sales_manager")["permissions"] == ["recycle_bin", "loyalty.report"]       # only the new item
    with newer.engine.connect() as connection:
        keys = set(connection.execute(sa.select(role_seeds.c.key)).scalars())
    assert {"loyalty:sales_manager:permissions/loyalty.adjust", "loyalty:sales_manager:permissions/loyalty.report",
            "loyalty:sales_rep:fields/customer/remark", "loyalty:sales_manager:entities/loyalty_tier/create"} <= keys

    with rt.transaction() as records:                                        # a deleted default role comes back
        records.session.execute(roles.delete().where(roles.c.name == "loyalty_clerk"))
    rt.upgrade()
    assert stored(rt, "loyalty_clerk")["permissions"] == ["loyalty.adjust"]


def test_disabled_plugins_ship_no_roles(make_runtime):
    rt = make_runtime(plugins=[("loyalty", Loyalty())], enabled="loyalty", **{"crm.plugins.disabled": "loyalty"})
    assert stored(rt, "loyalty_clerk") is None and stored(rt, "sales_manager")["permissions"] == ["recycle_bin"]


@pytest.mark.parametrize("bad, message", [
    ({"name": "x", "extends": "sales_rep", "rules": {}}, "either name"),
    ({"name": "sales_rep", "rules": {"entities": {}}}, "defined already"),
    ({"name": "clerk2", "rules": {"entities": {"ghost": {"read": "all"}}}}, "rules/entities/ghost: unknown entity"),
    ({"extends": "sales_rep", "rules": {"permissions": ["loyalty.fly"]}}, "unknown permission"),
    ({"extends": "sales_rep", "rules": {"entities": {"customer": {"read": "everything"}}}}, "scope must be one of"),
])
def test_bad_role_definitions_stop_the_upgrade_naming_the_plugin(make_runtime, bad, message):
    rt = make_runtime(plugins=[("loyalty", Loyalty(bad=bad))], enabled="loyalty", upgrade=False)
    with pytest.raises(ConfigurationError, match=message) as failed:
        rt.upgrade()
    assert "plugin 'loyalty'" in str(failed.value)


def user_with(runtime, name, role_names):
    with runtime.transaction() as records:
        user_id = org.add_user(records.session, name, "password-" + name, now=records.now(), role_names=role_names)
        return auth.get_user(records.session, user_id=user_id)


def test_menu_entries_need_their_permission_or_entity_action(make_runtime):
    from tests.test_pages import Site
    rt = make_runtime(plugins=[("loyalty", Loyalty())])
    user_with(rt, "mgr", ["sales_manager"])
    user_with(rt, "rep", ["sales_rep"])
    with rt.transaction() as records:
        access.save_role(records.session, "reader", {"zh_CN": "只读"}, {"entities": {"*": {"read": "all"}}, "permissions": ["loyalty.report"]})
    user_with(rt, "reader", ["reader"])

    def menu(name):
        site = Site(rt)
        site.login(name, "password-" + name)
        return [a.text for a in site.get("/app").html.select(".sidebar a")], site

    mgr, _ = menu("mgr")
    assert {"调整分值", "会员报表", "新建等级", "公海客户"} <= set(mgr)
    assert "会员等级" in mgr     # an entry with a url and an entity leaves that entity's own entry in place
    rep, rep_site = menu("rep")
    assert "公海客户" in rep and not {"调整分值", "会员报表", "新建等级"} & set(rep)
    assert "会员" not in [s.text for s in rep_site.get("/app").html.select(".sidebar .menu-heading")]   # nothing left under it
    reader, reader_site = menu("reader")
    assert "会员报表" in reader and "调整分值" not in reader and "新建等级" not in reader
    assert "公海客户" not in reader                                          # the pool needs protection.pool_view
    reader_site.get("/app/protection/pool", status=403)


def test_the_default_roles_run_an_expense_approval(make_runtime):
    """No role written by hand: a sales rep files an expense, their sales manager and a finance
    clerk approve it, the general manager raises a ceiling; a colleague does not see it."""
    rt = make_runtime()
    boss = user_with(rt, "boss", ["sales_manager"])
    with rt.transaction() as records:
        dept = org.create_department(records.session, "销售一部", manager_id=boss["id"])
        org.update_user(records.session, boss["id"], department_id=dept)
    rep = user_with(rt, "rep", ["sales_rep"])
    colleague = user_with(rt, "colleague", ["sales_rep"])
    with rt.transaction() as records:
        org.update_user(records.session, rep["id"], department_id=dept, manager_id=boss["id"])
        org.update_user(records.session, colleague["id"], department_id=dept)
    rep, colleague = _fresh(rt, rep), _fresh(rt, colleague)
    cfo, gm = user_with(rt, "cfo", ["finance"]), user_with(rt, "gm", ["general_manager"])
    with rt.transaction(user=cfo) as records:
        cc = records.create("cost_center", {"name": "华东市场"})
    with rt.transaction(user=gm) as records:
        records.update("cost_center", cc["id"], {"ceiling": 50000})
    with rt.transaction(user=rep) as records:
        expense = records.create("company_transaction", {"title": "客户拜访差旅", "cost_center_id": cc["id"], "amount": 1200,
                                                          "subject": "travel"})
        workflow.transition(records, "company_transaction", expense["id"], "submit")
    with rt.transaction(user=colleague) as records:
        assert records.list("company_transaction").items == []               # another rep's expense is private
    for who, step in ((boss, "manager_approve"), (cfo, "finance_approve")):
        with rt.transaction(user=who) as records:
            assert [t["id"] for _n, _r, steps in workflow.my_approvals(records) for t in steps][:1] == [step]
            workflow.transition(records, "company_transaction", expense["id"], step)
    with rt.transaction() as records:
        assert records.get("company_transaction", expense["id"])["status"] == "approved"
        assert records.get("cost_center", cc["id"])["spent"] == 1200


def _fresh(runtime, user):
    with runtime.transaction() as records:
        return auth.get_user(records.session, user_id=user["id"])


def test_menu_entries_placing_an_entity_under_a_heading_show_the_entitys_label(site):
    """A plugin's entry that names an entity and no label (the protection, points, projects,
    service and cost-center plugins place their entities so) shows the entity's plural label in
    the user's language, not its name."""
    names = set(site.runtime.metadata.entities)

    def sidebar():
        return [a.text for a in site.get("/app").html.select(".sidebar a")]

    chinese = sidebar()
    assert {"领用申请", "项目"} <= set(chinese) and not names & set(chinese), names & set(chinese)
    site.post("/locale", {"locale": "en", "next": "/app"})
    english = sidebar()
    assert {"Claim requests", "Projects"} <= set(english) and not names & set(english), names & set(english)
