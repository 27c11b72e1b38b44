"""Customer management pages through HTTP (WebTest, SQLite and PostgreSQL): merge (what moves,
field choice, history), the 360 view (every related list, plugin tabs, access scopes), envelope
printing (template from the system settings, one, the list's filter, the selected rows,
escaping), and the contact / follow-up / recycle-bin details of issue 5."""
import copy
import re

import pytest

from crm.core import access, directory
from crm.core.web.pages import envelopes
from crm.hooks import hookimpl
from tests.api_fixtures import PASSWORD, create_user
from tests.test_pages import Site, records_of, site, text_of  # noqa: F401  (site is a fixture)


# --- merge ---------------------------------------------------------------------------------------

def test_merge_shows_what_moves_then_moves_every_linked_record_and_keeps_history(site, tmp_path):
    runtime = site.runtime
    with records_of(runtime, 1) as records:
        keep = records.create("customer", {"name": "华夏科技有限公司", "phone": "010-1", "level": "A"})
        dup = records.create("customer", {"name": "华夏科技", "phone": "010-2", "address": "北京市海淀区中关村大街1号",
                                          "invoice_profiles": [{"name": "华夏科技", "tax_number": "91110000X"}]})
        records.create("contact", {"name": "保留的联系人", "customer_id": keep["id"]})
        moved_contact = records.create("contact", {"name": "王五", "customer_id": dup["id"]})
        follow_up = records.create("follow_up", {"customer_id": dup["id"], "subject": "电话回访", "type": "phone",
                                                 "occurred_at": "2026-11-20T10:00:00"})
        child = records.create("customer", {"name": "华夏科技上海分公司", "parent_customer_id": dup["id"]})
        decline = records.create("business_decline", {"customer_id": dup["id"], "detected_on": "2026-11-01"})
    site.app.post(f"/app/customer/{dup['id']}/attachments",
                  {"csrf_token": site.csrf}, upload_files=[("file", "营业执照.txt", "扫描件".encode())], status=302)

    pick = site.get(f"/app/customer/{keep['id']}/merge")
    suggested = [a["href"] for a in pick.html.select(".merge-suggestions a")]
    assert f"/app/customer/{keep['id']}/merge?duplicate={dup['id']}" in suggested              # similar name suggested
    compare = site.get(f"/app/customer/{keep['id']}/merge?duplicate={dup['id']}")
    choices = {tr["data-field"]: tr.get_text(" ", strip=True) for tr in compare.html.select("tr[data-field]")}
    assert "010-1" in choices["phone"] and "010-2" in choices["phone"] and "address" in choices
    moves = [m.replace(" :", ":") for m in text_of(compare, ".merge-moves li")]
    assert "联系人 · 所属客户: 1" in moves and "跟进记录 · 客户: 1" in moves and "客户 · 上级单位: 1" in moves
    assert "业务下滑日志 · 客户: 1" in moves and "开票资料: 1" in moves and "附件: 1" in moves

    form = compare.forms["merge-form"]
    assert form["pick.phone"].value == "mine" and form["pick.address"].value == "theirs"   # empty values get filled
    form["pick.phone"] = "theirs"
    detail = form.submit(status=302).follow()
    assert "已合并" in detail.text
    with records_of(runtime) as records:
        survivor = records.get("customer", keep["id"])
        assert survivor["phone"] == "010-2" and survivor["address"] == "北京市海淀区中关村大街1号" and survivor["level"] == "A"
        assert [p["tax_number"] for p in survivor["invoice_profiles"]] == ["91110000X"]
        assert records.get("contact", moved_contact["id"])["customer_id"] == keep["id"]
        assert records.get("contact", moved_contact["id"])["is_primary"] is False      # the survivor keeps its primary
        assert sum(c["is_primary"] for c in records.list("contact", filters=[("customer_id", "eq", keep["id"])]).items) == 1
        assert records.get("follow_up", follow_up["id"])["customer_id"] == keep["id"]
        assert survivor["last_contact_at"] is not None                                 # follows the moved follow-up
        assert records.get("customer", child["id"])["parent_customer_id"] == keep["id"]
        assert records.get("business_decline", decline["id"])["customer_id"] == keep["id"]
        assert [t["title"] for t in records.trash("customer")] == ["华夏科技"]
    assert "营业执照.txt" in detail.text
    history = text_of(detail, ".history-table tbody tr")
    assert any("合并" in h and f"#{dup['id']}" in h for h in history)
    assert any("主要电话" in h and "010-1" in h and "010-2" in h for h in history)
    site.get(f"/app/customer/{dup['id']}", status=404)                                  # in the recycle bin


def test_merge_is_refused_out_of_scope_and_with_itself(reps):
    site, mine, theirs = reps
    site.get(f"/app/customer/{mine['id']}/merge?duplicate={theirs['id']}", status=404)
    site.get(f"/app/customer/{mine['id']}/merge?duplicate={mine['id']}", status=400)


# --- 360 view --------------------------------------------------------------------------------------

class ServicePlugin:
    """A plugin entity linking to customers, and a plugin tab: both appear on the 360 view."""

    @hookimpl
    def crm_metadata(self):
        return [{"name": "test_service", "label": {"zh_CN": "服务记录", "en": "Service records"},
                 "title_field": "subject",
                 "fields": {"subject": {"type": "text", "label": {"zh_CN": "主题", "en": "Subject"}},
                            "customer_id": {"type": "link", "entity": "customer", "label": {"zh_CN": "客户", "en": "Customer"}},
                            "owner_id": {"type": "user", "label": {"zh_CN": "负责人", "en": "Owner"}}}}]

    @hookimpl
    def crm_related_tabs(self, ctx, entity, record):
        if entity.name == "customer":
            return [{"id": "tests.products", "label": {"zh_CN": "推荐产品", "en": "Suggested products"}, "entity": "product",
                     "filters": [["active", "eq", "true"]]}]


@pytest.fixture
def overview_site(make_runtime):
    runtime = make_runtime(plugins=[("tests_service", ServicePlugin())])
    create_user(runtime, "admin", display_name="管理员")
    rules = copy.deepcopy(access.DEFAULT_ROLES["sales_rep"]["rules"])
    rules["entities"]["test_service"] = {"read": "own"}
    rules["entities"]["business_decline"] = {"read": "none"}
    rules["fields"]["customer"]["credit_limit"] = "hidden"
    with runtime.transaction() as records:
        access.save_role(records.session, "rep360", {"zh_CN": "销售"}, rules)
        rep = directory.add_user(records.session, "rep", PASSWORD, now=records.now(), role_names=["rep360"], display_name="小李")
    with records_of(runtime, 1) as records:
        acme = records.create("customer", {"name": "广州人易软件", "owner_id": rep, "level": "A", "credit_rating": 4,
                                           "credit_limit": "50000"})
        records.set_derived("customer", acme["id"], {"deal_count": 3, "deal_amount": 128000})
        records.create("contact", {"name": "张经理", "customer_id": acme["id"], "title": "采购经理", "owner_id": rep})
        records.create("follow_up", {"customer_id": acme["id"], "subject": "上门拜访", "type": "visit",
                                     "occurred_at": "2026-11-18T15:00:00", "owner_id": rep})
        records.create("customer", {"name": "人易软件深圳分公司", "parent_customer_id": acme["id"], "owner_id": rep})
        records.create("customer", {"name": "别人的分公司", "parent_customer_id": acme["id"]})   # not the rep's
        records.create("test_service", {"subject": "安装调试", "customer_id": acme["id"], "owner_id": rep})
        records.create("test_service", {"subject": "别人的服务", "customer_id": acme["id"]})
        records.create("business_decline", {"customer_id": acme["id"], "detected_on": "2026-11-01"})
        records.create("product", {"name": "人易CRM", "active": True})
    admin, rep_site = Site(runtime), Site(runtime)
    admin.login()
    rep_site.login("rep")
    return admin, rep_site, acme


def test_360_view_has_figures_and_every_related_list(overview_site):
    admin, _rep, acme = overview_site
    detail = admin.get(f"/app/customer/{acme['id']}")
    url = detail.html.select_one("#action-overview")["href"]
    assert url == f"/app/customer/{acme['id']}/overview" and "客户全景图" in detail.text
    page = admin.get(url)
    figures = {d["data-figure"]: d.get_text(" ", strip=True) for d in page.html.select("[data-figure]")}
    assert "小李" in figures["owner_id"] and "128,000.00" in figures["deal_amount"] and "3" in figures["deal_count"]
    assert "★★★★☆" in figures["credit_rating"] and "50,000.00" in figures["credit_limit"] and "最近联系" in figures["last_contact_at"]
    sections = [s["data-section"] for s in page.html.select("[data-section]")]
    assert sections[:2] == ["contact.customer_id", "follow_up.customer_id"]       # contacts and follow-ups first
    assert {"customer.parent_customer_id", "test_service.customer_id", "business_decline.customer_id", "tests.products"} <= set(sections)
    text = page.text
    for name in ("张经理", "上门拜访", "人易软件深圳分公司", "别人的分公司", "安装调试", "别人的服务", "人易CRM"):
        assert name in text
    assert "下级单位" in text


def test_360_view_applies_access_to_every_section(overview_site):
    _admin, rep, acme = overview_site
    page = rep.get(f"/app/customer/{acme['id']}/overview")
    figures = {d["data-figure"] for d in page.html.select("[data-figure]")}
    assert "credit_limit" not in figures and "50,000" not in page.text                  # hidden field
    sections = {s["data-section"]: s for s in page.html.select("[data-section]")}
    assert "business_decline.customer_id" not in sections                               # may not read
    assert "安装调试" in page.text and "别人的服务" not in page.text                     # own scope
    assert "人易软件深圳分公司" in page.text and "别人的分公司" not in page.text
    service = sections["test_service.customer_id"]
    assert service.select_one(".badge").text == "1"                                    # counted within scope
    with records_of(rep.runtime, 1) as records:
        other = records.create("customer", {"name": "看不到的客户"})
    rep.get(f"/app/customer/{other['id']}/overview", status=404)


# --- envelopes -------------------------------------------------------------------------------------

def test_envelope_for_one_customer_uses_the_editable_template(site):
    with records_of(site.runtime, 1) as records:
        acme = records.create("customer", {"name": "广州市人易软件技术有限公司", "address": "广州市天河区体育西路1号",
                                           "postcode": "510620", "region": "CN-GD"})
        records.create("contact", {"name": "不再是主联系人", "customer_id": acme["id"]})          # first: primary at first
        records.create("contact", {"name": "陈小姐", "customer_id": acme["id"], "title": "行政经理", "is_primary": True})
    detail = site.get(f"/app/customer/{acme['id']}")
    page = site.get(detail.html.select_one("#action-envelope")["href"])
    assert "@page { size: 220mm 110mm; margin: 0; }" in page.text
    envelope = page.html.select_one(".envelope")
    assert [l.text for l in envelope.select(".recipient .line")] == ["广州市天河区体育西路1号", "广州市人易软件技术有限公司", "陈小姐 行政经理 收"]
    assert envelope.select_one(".recipient .name").text == "广州市人易软件技术有限公司"
    assert "".join(d.text for d in envelope.select(".postcode .digit")) == "510620"

    with records_of(site.runtime, 1) as records:
        settings = records.singleton("system_settings")
        records.update("system_settings", settings["id"], {
            "company_name": "人易软件", "envelope_size": "229x162", "envelope_postcode_boxes": False,
            "envelope_recipient": "{region}\n{address}（{postcode}）\n{name}\n{contact}先生/女士 {unknown}",
            "envelope_sender": "深圳市南山区科技园 {company_name} 518000"})
    page = site.get(f"/app/customer/{acme['id']}/envelope")
    assert "size: 229mm 162mm" in page.text and not page.html.select(".postcode")
    envelope = page.html.select_one(".envelope")
    assert [l.text for l in envelope.select(".recipient .line")] == [
        "华南 / 广东省", "广州市天河区体育西路1号（510620）", "广州市人易软件技术有限公司", "陈小姐先生/女士 {unknown}"]
    assert envelope.select_one(".sender").get_text(strip=True) == "深圳市南山区科技园 人易软件 518000"
    smaller = site.get(f"/app/customer/{acme['id']}/envelope?size=162x114")               # chosen on the page
    assert "size: 162mm 114mm" in smaller.text
    assert site.get(f"/app/customer/{acme['id']}/envelope?size=huge").text.count("size: 229mm 162mm") == 1


def test_envelopes_for_the_list_filter_and_for_selected_rows_are_escaped(site):
    with records_of(site.runtime, 1) as records:
        ids = [records.create("customer", {"name": f"北京客户{i}", "region": "CN-BJ", "address": f"北京市朝阳区{i}号"})["id"]
               for i in range(3)]
        records.create("customer", {"name": "上海客户", "region": "CN-SH", "address": "上海"})
        evil = records.create("customer", {"name": "<script>alert(1)</script>", "address": "<b>粗体</b>"})
    listing = site.get("/app/customer?region=CN-BJ")
    link = listing.html.select_one("#list-envelopes")["href"]
    assert link.startswith("/app/customer/envelopes?") and "region=CN-BJ" in link
    page = site.get(link)
    assert sorted(int(e["data-record"]) for e in page.html.select(".envelope")) == ids
    assert "共 3 个信封" in page.text

    form = site.get("/app/customer").forms["bulk-form"]
    for box in form.fields["ids"]:
        box.checked = box._value == str(evil["id"])
    assert listing.html.select_one("#bulk-envelopes")["formaction"] == "/app/customer/envelopes"
    fields = [(k, v) for k, v in form.submit_fields() if k != "action"]
    selected = site.app.post("/app/customer/envelopes", fields)
    assert [int(e["data-record"]) for e in selected.html.select(".envelope")] == [evil["id"]]
    assert "<script>alert(1)</script>" not in selected.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in selected.text
    assert "<b>粗体</b>" not in selected.text
    site.app.post("/app/customer/envelopes", [("ids", str(evil["id"]))], status=400)     # no CSRF token


def test_envelopes_respect_scope_and_are_offered_where_there_is_an_address(reps):
    site, mine, theirs = reps
    page = site.get("/app/customer/envelopes")
    assert [int(e["data-record"]) for e in page.html.select(".envelope")] == [mine["id"]]
    site.get(f"/app/customer/{theirs['id']}/envelope", status=404)
    form = site.get("/app/customer").forms["bulk-form"]
    selected = site.app.post("/app/customer/envelopes", [("ids", str(theirs["id"])), ("csrf_token", form["csrf_token"].value)])
    assert not selected.html.select(".envelope")
    assert not site.get("/app/contact").html.select("#list-envelopes")                   # contacts have no address
    site.get("/app/contact/envelopes", status=400)
    assert envelopes.fill("{a}-{b}-{c}", {"a": 1, "b": "<x>"}) == "1-<x>-{c}"


@pytest.fixture
def reps(make_runtime):
    runtime = make_runtime()
    create_user(runtime, "admin")
    with runtime.transaction() as records:
        ids = {name: directory.add_user(records.session, name, PASSWORD, now=records.now(), role_names=["sales_rep"])
               for name in ("rep1", "rep2")}
    with runtime.transaction() as records:
        mine = records.create("customer", {"name": "甲的客户", "owner_id": ids["rep1"], "address": "甲地"})
        theirs = records.create("customer", {"name": "乙的客户", "owner_id": ids["rep2"], "address": "乙地"})
    site = Site(runtime)
    site.login("rep1")
    return site, mine, theirs


# --- customer care pages ---------------------------------------------------------------------------

@pytest.fixture
def care(make_runtime, clock):
    """A manager, a rep reporting to them, another rep; customers and contacts of both reps."""
    runtime = make_runtime()
    create_user(runtime, "admin", display_name="管理员")
    with runtime.transaction() as records:
        s, now = records.session, records.now()
        boss = directory.add_user(s, "boss", PASSWORD, now=now, role_names=["sales_manager"], display_name="王经理")
        rep = directory.add_user(s, "rep", PASSWORD, now=now, role_names=["sales_rep"], manager_id=boss, display_name="小李")
        other = directory.add_user(s, "other", PASSWORD, now=now, role_names=["sales_rep"], display_name="小张")
    ids = {"boss": boss, "rep": rep, "other": other}
    with records_of(runtime, 1) as records:
        mine = records.create("customer", {"name": "小李的老客户", "owner_id": rep, "region": "CN-BJ-DC", "industry": "it_software"})
        theirs = records.create("customer", {"name": "小张的老客户", "owner_id": other, "region": "CN-SH", "industry": "it_software"})
        records.set_derived("customer", mine["id"], {"deal_amount": 90000, "deal_count": 2})
        records.set_derived("customer", theirs["id"], {"deal_amount": 150000, "deal_count": 5})
        records.create("contact", {"name": "寿星", "customer_id": mine["id"], "birthday": "1980-11-25", "owner_id": rep})
        records.create("contact", {"name": "别人的寿星", "customer_id": theirs["id"], "birthday": "1985-11-26", "owner_id": other})
        records.create("follow_up", {"customer_id": mine["id"], "subject": "约下周拜访", "type": "phone", "owner_id": rep,
                                     "occurred_at": "2026-09-01T10:00:00", "next_contact_on": "2026-09-08"})
        records.create("follow_up", {"customer_id": theirs["id"], "subject": "别人的计划", "type": "phone", "owner_id": other,
                                     "occurred_at": "2026-09-01T10:00:00", "next_contact_on": "2026-11-25"})
        kept = records.create("customer", {"name": "已跟进客户", "owner_id": rep, "region": "CN-GD"})
        records.create("follow_up", {"customer_id": kept["id"], "subject": "计划下周回访", "type": "phone", "owner_id": rep,
                                     "occurred_at": "2026-11-01T10:00:00", "next_contact_on": "2026-11-08"})
        records.create("follow_up", {"customer_id": kept["id"], "subject": "已经回访", "type": "visit", "owner_id": rep,
                                     "occurred_at": "2026-11-09T10:00:00"})
    clock.advance(days=0)
    sites = {}
    for name in ("admin", "boss", "rep"):
        sites[name] = Site(runtime)
        sites[name].login(name)
    return sites, ids, mine, theirs


def test_care_pages_are_in_the_menu_and_show_only_what_the_user_may_see(care):
    sites, _ids, mine, theirs = care
    rep = sites["rep"]
    home = rep.get("/app")
    group = next(li for li in home.html.select(".sidebar li.menu-group") if "客户关怀" in li.get_text())
    links = {a.text.strip(): a["href"] for a in group.select("a")}
    assert links["超过30天未联系客户"] == "/app/care/not-contacted" and links["客户跟进计划提醒"] == "/app/care/plans"
    assert links["联系人关怀提醒"] == "/app/care/birthdays" and links["大客户排行"] == "/app/care/ranking"
    assert links["市场分布视图"] == "/app/care/distribution" and links["业务下滑日志"] == "/app/business_decline"
    assert links["常用跟进内容"] == "/app/follow_up_template"

    page = rep.get(links["超过30天未联系客户"])
    assert "小李的老客户" in page.text and "小张的老客户" not in page.text and "已跟进客户" not in page.text
    assert f"/app/follow_up/new?customer_id={mine['id']}" in page.text
    assert "小李的老客户" not in rep.get("/app/care/not-contacted?days=1000").text
    rep.get("/app/care/not-contacted?days=abc", status=400)

    plans = rep.get("/app/care/plans")
    assert "约下周拜访" in plans.text and "已过期 76 天" in plans.text
    assert "别人的计划" not in plans.text and "计划下周回访" not in plans.text          # another's; a plan already kept
    assert "别人的计划" in sites["admin"].get("/app/care/plans").text

    birthdays = rep.get("/app/care/birthdays")
    assert "寿星" in birthdays.text and "2026-11-25" in birthdays.text and "别人的寿星" not in birthdays.text
    assert "别人的寿星" in sites["admin"].get("/app/care/birthdays").text

    ranking = sites["admin"].get("/app/care/ranking")
    assert [r.select("td")[-1].text for r in ranking.html.select("tbody tr")] == ["1", "2"]
    assert [r.select_one("td a").text for r in ranking.html.select("tbody tr")] == ["小张的老客户", "小李的老客户"]
    assert [r.select_one("td a").text for r in rep.get("/app/care/ranking").html.select("tbody tr")] == ["小李的老客户"]


def test_market_distribution_by_region_level_and_industry_with_a_chart(care):
    sites, _ids, _mine, _theirs = care
    page = sites["admin"].get("/app/care/distribution?level=1")
    regions = {tr.select_one("th").text: tr.select("td")[0].text for tr in page.html.select('[data-by="region"] tbody tr')}
    assert regions == {"华北": "1", "华东": "1", "华南": "1"}
    assert len(page.html.select('[data-by="region"] .bar')) == 3
    industries = {tr.select_one("th").text: tr.select("td")[0].text for tr in page.html.select('[data-by="industry"] tbody tr')}
    assert industries["IT/软件"] == "2" and industries["（空）"] == "1"
    cross = page.html.select('[data-by="cross"] tbody tr')
    assert [c.text for c in cross[0].select("td")][-1] == "1"
    provinces = sites["admin"].get("/app/care/distribution?level=2")
    assert "北京市" in provinces.html.select_one('[data-by="region"]').text
    link = provinces.html.select_one('[data-by="region"] tr[data-value="CN-BJ"] a')["href"]
    assert "小李的老客户" in sites["admin"].get(link).text                               # the list includes sub-regions
    mine_only = sites["rep"].get("/app/care/distribution?level=1")
    assert {tr.select_one("th").text for tr in mine_only.html.select('[data-by="region"] tbody tr')} == {"华北", "华南"}


def test_a_manager_comments_on_a_subordinates_follow_up_and_nobody_else_may(care):
    sites, ids, mine, _theirs = care
    with records_of(sites["admin"].runtime) as records:
        follow_up = records.list("follow_up", filters=[("subject", "eq", "约下周拜访")]).items[0]
    url = f"/app/follow_up/{follow_up['id']}"
    assert not sites["rep"].get(url).html.select("#action-customer_care\\.comment")     # not on one's own
    form_url = sites["boss"].get(url).html.select_one("#action-customer_care\\.comment")["href"]
    page = sites["boss"].get(form_url)
    assert "约下周拜访" in page.text
    form = page.forms["comment-form"]
    form["manager_comment"] = "拜访前先把报价准备好"
    detail = form.submit(status=302).follow()
    assert "点评已保存" in detail.text and "拜访前先把报价准备好" in detail.text and "王经理" in detail.text
    refused = sites["rep"].post(form_url, {"manager_comment": "自己给自己点评", "version": ""}, status=200)
    assert "只有负责人的上级主管可以点评" in refused.text
    with records_of(sites["admin"].runtime) as records:
        saved = records.get("follow_up", follow_up["id"])
    assert saved["manager_comment"] == "拜访前先把报价准备好" and saved["commented_by"] == ids["boss"]


def test_follow_up_content_from_an_editable_template(care):
    sites, _ids, mine, _theirs = care
    admin = sites["admin"]
    new = admin.get("/app/follow_up_template/new").forms["record-form"]
    new["name"], new["content"], new["type"] = "产品演示回访", "已向客户演示产品，约定一周内反馈试用意见。", "visit"
    template_url = new.submit(status=302).location
    template_id = int(re.search(r"/(\d+)$", template_url).group(1))
    form = admin.get(f"/app/follow_up/new?customer_id={mine['id']}").forms["record-form"]
    assert "customer_care_template_id" in form.fields
    form["subject"], form["occurred_at"] = "演示后回访", "2026-11-23T09:00"
    form["customer_care_template_id"] = str(template_id)
    detail = admin.get(form.submit(status=302).location)
    assert "已向客户演示产品，约定一周内反馈试用意见。" in detail.text
    form = admin.get(f"/app/follow_up/new?customer_id={mine['id']}").forms["record-form"]
    form["subject"], form["occurred_at"], form["content"] = "自己写的内容", "2026-11-23T10:00", "客户要求修改报价"
    form["customer_care_template_id"] = str(template_id)
    detail = admin.get(form.submit(status=302).location)
    assert "客户要求修改报价" in detail.text and "已向客户演示产品" not in detail.text   # typed content wins


def test_primary_contact_can_be_changed_and_a_contact_moved_to_another_customer(site):
    with records_of(site.runtime, 1) as records:
        first = records.create("customer", {"name": "甲公司"})
        second = records.create("customer", {"name": "乙公司"})
        a = records.create("contact", {"name": "张一", "customer_id": first["id"]})
        b = records.create("contact", {"name": "李二", "customer_id": first["id"]})
        records.create("follow_up", {"customer_id": first["id"], "contact_id": b["id"], "subject": "和李二通话", "type": "phone",
                                     "occurred_at": "2026-11-20T10:00:00"})
    assert not site.get(f"/app/contact/{a['id']}").html.select("#action-customer_care\\.primary")   # already primary
    page = site.get(f"/app/contact/{b['id']}")
    made = site.post(page.html.select_one("#action-customer_care\\.primary").find_parent("form")["action"], {}).follow()
    assert "李二 已设为主联系人" in made.text
    with records_of(site.runtime) as records:
        assert records.get("contact", b["id"])["is_primary"] and not records.get("contact", a["id"])["is_primary"]

    move = site.get(site.get(f"/app/contact/{b['id']}").html.select_one("#action-customer_care\\.move")["href"])
    assert "当前所属客户：甲公司" in move.text
    form = move.forms["move-form"]
    form["customer_id"] = str(second["id"])
    assert "联系人已转移" in form.submit(status=302).follow().text
    with records_of(site.runtime) as records:
        moved = records.get("contact", b["id"])
        assert moved["customer_id"] == second["id"] and moved["is_primary"]              # alone at the new customer
        assert records.get("contact", a["id"])["is_primary"]                             # the old one keeps a primary
        assert records.list("follow_up", filters=[("contact_id", "eq", b["id"])]).items[0]["subject"] == "和李二通话"
    form = site.get(f"/app/care/contact/{b['id']}/move").forms["move-form"]
    form["customer_id"] = str(second["id"])
    assert "该联系人已属于这个客户" in form.submit(status=200).text
    site.app.post(f"/app/care/contact/{b['id']}/primary", {}, status=400)                # no CSRF token


def test_restoring_a_customer_brings_back_its_contacts_and_links(site):
    with records_of(site.runtime, 1) as records:
        acme = records.create("customer", {"name": "回收站客户"})
        contact = records.create("contact", {"name": "一起删除的联系人", "customer_id": acme["id"]})
        alone = records.create("contact", {"name": "早先删除的联系人", "customer_id": acme["id"]})
        follow_up = records.create("follow_up", {"customer_id": acme["id"], "contact_id": contact["id"], "subject": "回访",
                                                 "type": "phone", "occurred_at": "2026-11-20T10:00:00"})
        records.delete("contact", alone["id"])
    site.post(f"/app/customer/{acme['id']}/delete", {})
    site.get(f"/app/contact/{contact['id']}", status=404)
    trash = site.get("/app/trash")
    assert "一起删除的联系人" in trash.text and f"deleted with customer #{acme['id']}" in trash.text
    site.post("/app/trash/restore", {"entity": "customer", "id": str(acme["id"])})
    detail = site.get(f"/app/customer/{acme['id']}")
    contacts = detail.html.select_one('[data-related="contact"]').text
    assert "一起删除的联系人" in contacts and "早先删除的联系人" not in contacts        # only those deleted with it
    assert "回访" in detail.html.select_one('[data-related="follow_up"]').text
    assert site.get(f"/app/contact/{contact['id']}").status_int == 200
    with records_of(site.runtime) as records:
        assert records.get("follow_up", follow_up["id"])["contact_id"] == contact["id"]
        assert records.get("contact", contact["id"])["is_primary"]


def test_export_of_the_list_filter_follows_export_permission_and_scope(make_runtime, tmp_path):
    import openpyxl
    runtime = make_runtime()
    create_user(runtime, "admin")
    rules = copy.deepcopy(access.DEFAULT_ROLES["sales_rep"]["rules"])
    rules["entities"]["customer"]["export"] = "own"
    with runtime.transaction() as records:
        access.save_role(records.session, "exporter", {"zh_CN": "可导出的销售"}, rules)
        rep = directory.add_user(records.session, "rep", PASSWORD, now=records.now(), role_names=["exporter"])
        plain = directory.add_user(records.session, "plain", PASSWORD, now=records.now(), role_names=["sales_rep"])
    with records_of(runtime, 1) as records:
        for name, owner, region in (("北京自己的", rep, "CN-BJ"), ("上海自己的", rep, "CN-SH"), ("北京别人的", plain, "CN-BJ")):
            records.create("customer", {"name": name, "owner_id": owner, "region": region, "remark": "=1+1"})
    site = Site(runtime)
    site.login("rep")
    listing = site.get("/app/customer?region=CN-BJ")
    url = listing.html.select_one("#list-export-xlsx")["href"]
    assert "format=xlsx" in url and "region=CN-BJ" in url
    path = tmp_path / "e.xlsx"
    path.write_bytes(site.get(url).body)
    rows = list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
    names = [r[rows[0].index("客户名称")] for r in rows[1:]]
    assert names == ["北京自己的"]
    assert rows[1][rows[0].index("备注")] == "'=1+1"
    other = Site(runtime)
    other.login("plain")
    assert not other.get("/app/customer").html.select("#list-export-xlsx")
    other.get("/app/customer/export?format=xlsx", status=403)


def test_the_new_pages_speak_english_too(care, tmp_path):
    sites, _ids, mine, _theirs = care
    admin = sites["admin"]
    admin.post("/locale", {"locale": "en", "next": "/app"})
    assert "Customers by Region" in admin.get("/app/care/distribution").text
    assert "Not contacted for" in admin.get("/app/care/not-contacted").text
    overview = admin.get(f"/app/customer/{mine['id']}/overview")
    assert "Customer 360° view" in overview.text and "Total deal amount" in overview.text
    assert "Print envelope" in admin.get(f"/app/customer/{mine['id']}").text
    upload = admin.get("/app/customer/import")
    assert "Import Customers" in upload.text and "Download an empty template" in upload.text
