"""The import wizard through HTTP (WebTest over ``make_app``, SQLite and PostgreSQL): upload a real
.xlsx made with openpyxl (duplicates, a bad row, Chinese text), map the columns, choose mode and
duplicate criteria, dry run, run, download the bad rows, revert; malformed files; permissions;
CSRF; the progress endpoint."""
import json
import re

import openpyxl
import pytest
from webtest import Upload

from crm.core import directory, import_sessions, tabular
from tests.api_fixtures import PASSWORD
from tests.test_pages import Site, records_of, site  # noqa: F401  (site is a fixture)

HEADERS = ["客户名称", "主要电话", "所属区域", "客户类别", "员工数量", "公司网址（旧）", "备注"]
ROWS = [
    ["广州市人易软件技术有限公司", "020-88886666", "广东", "现有终端客户", 50, "http://old.example", "老客户，已合作三年"],
    ["北京华夏科技有限公司", "010-12345678", "北京", "潜在终端客户", 12, None, "展会认识"],
    ["北京华夏科技有限公司", "010-00000000", "北京", "潜在终端客户", 13, None, "同一文件里重复"],
    ["火星贸易有限公司", "000", "火星", "潜在终端客户", "很多", None, "区域和员工数都不对"],
    ["上海东方贸易公司", "021-5555", "上海", "现有终端客户", 8, None, "重点客户，月底回访"],
]


def workbook(path, rows=ROWS, headers=HEADERS):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "客户"
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def customers(runtime):
    with records_of(runtime) as records:
        return {c["name"]: c for c in records.list("customer", limit=500).items}


def upload(site, path, entity="customer", status=302):
    page = site.get(f"/app/{entity}/import")
    form = page.forms["import-upload"]
    form["file"] = Upload(str(path))
    return form.submit(status=status)


def run_from(site, form):
    """Submit the mapping form through its "import now" button (formaction: the run URL)."""
    fields = [(k, v) for k, v in form.submit_fields() if k != "csrf_token"]
    return site.app.post(form.action.replace("/check", "/run"), fields + [("csrf_token", site.csrf)], status=302)


@pytest.fixture
def existing(site):
    with records_of(site.runtime, 1) as records:
        return records.create("customer", {"name": "广州市人易软件技术有限公司", "phone": "020-1", "category": "existing_end"})


def test_wizard_upload_mapping_dry_run_run_errors_and_revert(site, existing, tmp_path):
    path = workbook(tmp_path / "客户导入.xlsx")
    list_page = site.get("/app/customer")
    assert list_page.html.select_one("#list-import")["href"] == "/app/customer/import"

    mapping = upload(site, path).follow()
    assert "客户导入.xlsx" in mapping.text and "5 条数据" in mapping.text
    selects = {s["data-column"]: s for s in mapping.html.select("select[data-column]")}
    chosen = {h: (s.select_one("option[selected]") or {}).get("value", "") for h, s in selects.items()}
    assert chosen == {"客户名称": "name", "主要电话": "phone", "所属区域": "region", "客户类别": "category",
                      "员工数量": "employee_count", "公司网址（旧）": "", "备注": "remark"}   # from labels
    assert "广州市人易软件技术有限公司" in mapping.text                                  # first values shown
    assert mapping.html.select_one('input[name="match"][value="name"]').has_attr("checked")  # title field by default

    mapping_url = mapping.request.path
    form = mapping.forms["import-mapping"]
    form["column.5"] = "website"          # the user maps the extra column by hand
    report = form.submit(status=302).follow()          # dry run, mode create
    assert "试运行：未保存任何数据" in report.text
    counts = {li["data-count"]: int(li.select_one(".count-number").text) for li in report.html.select("[data-count]")}
    assert counts == {"created": 2, "updated": 0, "skipped": 2, "error": 1}
    rows = {int(tr["data-row"]): tr.get_text(" ", strip=True) for tr in report.html.select("tr[data-row]")}
    assert "跳过" in rows[2] and f"已存在（#{existing['id']}，客户名称相同）" in rows[2]
    assert rows[2].count(f"#{existing['id']}") == 2                                  # linked to the existing record
    assert "跳过" in rows[4] and "与文件第 3 行的客户名称相同" in rows[4]
    assert "错误" in rows[5] and "所属区域：“火星”不在可选值中" in rows[5] and "员工数量：“很多”不是整数" in rows[5]
    assert "按当前选择，导入会停止且不保存任何数据" in report.text
    assert customers(site.runtime).keys() == {"广州市人易软件技术有限公司"}           # nothing saved
    assert customers(site.runtime)["广州市人易软件技术有限公司"]["phone"] == "020-1"

    errors = site.get(report.html.select_one("#import-errors")["href"])
    assert "attachment" in errors.headers["Content-Disposition"]
    error_file = tmp_path / "errors.xlsx"
    error_file.write_bytes(errors.body)
    headers, bad = tabular.read(error_file)
    assert headers[-1] == "错误 / error" and [cells[0] for _n, cells in bad] == ["火星贸易有限公司"]

    only_errors = site.get(report.request.path + "?show=error")
    assert [int(tr["data-row"]) for tr in only_errors.html.select("tr[data-row]")] == [5]

    # all or nothing: running now saves nothing and says so
    failed = report.forms["import-run-form"].submit(status=302).follow()
    assert "没有导入任何数据" in failed.text
    assert customers(site.runtime).keys() == {"广州市人易软件技术有限公司"}

    # the good rows only, straight from the mapping step ("import now")
    again = site.get(mapping_url)
    form = again.forms["import-mapping"]
    assert form["column.5"].value == "website" and form["mode"].value == "create"   # the choices are kept
    form["mode"] = "upsert"
    form["partial"] = True
    done = run_from(site, form).follow()
    assert "导入完成" in done.text
    found = customers(site.runtime)
    assert set(found) == {"广州市人易软件技术有限公司", "北京华夏科技有限公司", "上海东方贸易公司"}
    assert found["广州市人易软件技术有限公司"]["phone"] == "020-88886666"            # updated
    assert found["广州市人易软件技术有限公司"]["website"] == "http://old.example"
    assert found["北京华夏科技有限公司"]["region"] == "CN-BJ" and found["北京华夏科技有限公司"]["employee_count"] == 13  # row 4 updated row 3
    assert found["上海东方贸易公司"]["remark"] == "重点客户，月底回访"
    link = done.html.select_one('tr[data-row="3"] a')
    assert link["href"] == f"/app/customer/{found['北京华夏科技有限公司']['id']}"
    site.post(done.request.path.replace("/report", "/run"), {}, status=302)          # a second run is refused
    assert len(customers(site.runtime)) == 3

    # the import is listed and can be reverted
    start = site.get("/app/customer/import")
    assert "客户导入.xlsx" in start.text and "完成" in start.text
    reverted = done.forms["import-revert-form"].submit(status=302).follow()
    assert "已撤销导入：2 条记录移入回收站，2 条已恢复" in reverted.text
    found = customers(site.runtime)
    assert set(found) == {"广州市人易软件技术有限公司"} and found["广州市人易软件技术有限公司"]["phone"] == "020-1"
    assert found["广州市人易软件技术有限公司"]["website"] is None
    assert "已撤销" in site.get("/app/customer/import").text

    # the mapping is remembered for the next file with the same columns
    mapping = upload(site, workbook(tmp_path / "second.xlsx", rows=ROWS[:1])).follow()
    assert "已填入您上次为相同列的文件所选的对应关系" in mapping.text
    assert mapping.forms["import-mapping"]["column.5"].value == "website"


def test_update_mode_needs_criteria_and_unknown_rows_are_skipped(site, existing, tmp_path):
    mapping = upload(site, workbook(tmp_path / "u.xlsx", rows=[ROWS[0], ROWS[4]])).follow()
    form = mapping.forms["import-mapping"]
    form["mode"] = "update"
    for box in form.fields["match"]:
        box.checked = False
    refused = form.submit(status=400)
    assert "更新需要查重条件" in refused.text
    form = refused.forms["import-mapping"]
    form.fields["match"][[b._value for b in form.fields["match"]].index("name")].checked = True
    report = form.submit(status=302).follow()
    rows = {int(tr["data-row"]): tr.get_text(" ", strip=True) for tr in report.html.select("tr[data-row]")}
    assert "更新" in rows[2] and "跳过" in rows[3] and "没有符合查重条件的记录" in rows[3]


def test_duplicates_by_phone_or_by_name_and_region(site, tmp_path):
    with records_of(site.runtime, 1) as records:
        records.create("customer", {"name": "华夏科技", "phone": "010-12345678", "region": "CN-SH"})
    path = workbook(tmp_path / "d.xlsx", rows=[["华夏科技", "010-12345678", "北京", None, None, None, None],
                                                 ["华夏科技二部", "010-12345678", "上海", None, None, None, None]])
    for match, expected in ((["phone"], ["skipped", "skipped"]), (["name", "region"], ["created", "created"])):
        form = upload(site, path).follow().forms["import-mapping"]
        for box in form.fields["match"]:
            box.checked = box._value in match
        report = form.submit(status=302).follow()
        assert [tr["class"][0] for tr in report.html.select("tr[data-row]")] == [f"row-{a}" for a in expected], match


@pytest.mark.parametrize("name, content, message", [
    ("broken.xlsx", b"PK\x03\x04 this is not really a workbook", "无法导入该文件：文件已损坏"),
    ("empty.csv", b"", "无法导入该文件：文件是空的"),
    ("latin1.csv", "name\nCaf\xe9\n".encode("utf-16"), "无法导入该文件"),
    ("only-header.csv", "客户名称,主要电话\n".encode(), "只有标题行"),
    ("notes.txt", b"hello", "请使用 .xlsx 或 .csv 文件"),
])
def test_a_malformed_file_gets_a_clear_message_and_changes_nothing(site, name, content, message):
    page = site.get("/app/customer/import")
    form = page.forms["import-upload"]
    form["file"] = Upload(name, content)
    refused = form.submit(status=400)
    assert message in refused.text
    assert customers(site.runtime) == {}
    assert not import_sessions.root(site.runtime).exists() or not any(import_sessions.root(site.runtime).iterdir())


def test_gbk_csv_and_progress(site, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("客户名称,主要电话\n深圳前海物流,0755-1\n杭州西湖软件,0571-2\n".encode("gb18030"))
    mapping = upload(site, path).follow()
    token = mapping.request.path.rsplit("/", 1)[1]
    assert site.get(f"/app/customer/import/{token}/progress").json == {"phase": None, "done": 0, "total": 0, "running": False}
    mapping.forms["import-mapping"].submit(status=302)
    assert site.get(f"/app/customer/import/{token}/progress").json == {"phase": "check", "done": 2, "total": 2, "running": False}
    site.post(f"/app/customer/import/{token}/run", {}, status=302)
    assert site.get(f"/app/customer/import/{token}/progress").json["phase"] == "run"
    assert set(customers(site.runtime)) == {"深圳前海物流", "杭州西湖软件"}
    state = json.loads((import_sessions.root(site.runtime) / token / "state.json").read_text("utf-8"))
    assert state["import_id"] and state["filename"] == "gbk.csv"


def test_the_template_file_lists_the_importable_columns(site, tmp_path):
    response = site.get("/app/customer/import/template.xlsx")
    path = tmp_path / "t.xlsx"
    path.write_bytes(response.body)
    headers = [c.value for c in next(openpyxl.load_workbook(path).active.iter_rows(max_row=1))]
    assert headers[0] == "客户名称" and "主要电话" in headers and "客户编号" not in headers and "助记码" not in headers


def test_who_may_import_and_whose_uploads_are_whose(site, tmp_path):
    with records_of(site.runtime) as records:
        directory.add_user(records.session, "viewer", PASSWORD, now=records.now(), role_names=["viewer"])
        directory.add_user(records.session, "rep", PASSWORD, now=records.now(), role_names=["sales_rep"])
    mapping = upload(site, workbook(tmp_path / "a.xlsx")).follow()
    token = mapping.request.path.rsplit("/", 1)[1]

    viewer = Site(site.runtime)
    viewer.login("viewer")
    assert not viewer.get("/app/customer").html.select("#list-import")
    viewer.get("/app/customer/import", status=403)
    viewer.app.post("/app/customer/import", {"csrf_token": viewer.csrf}, status=403)

    rep = Site(site.runtime)
    rep.login("rep")
    rep.get("/app/customer/import")                          # sales reps may import customers
    rep.get(f"/app/customer/import/{token}", status=404)     # but not someone else's upload
    rep.post(f"/app/customer/import/{token}/run", {}, status=404)
    rep.get(f"/app/customer/import/{token}/progress", status=404)
    assert customers(site.runtime) == {}

    site.app.post(f"/app/customer/import/{token}/check", {"mode": "create"}, status=400)   # no CSRF token
    site.app.post("/app/customer/import", {}, status=400)
    assert customers(site.runtime) == {}


def test_reps_import_into_their_own_scope_and_revert_only_their_imports(site, tmp_path):
    with records_of(site.runtime) as records:
        rep_id = directory.add_user(records.session, "rep", PASSWORD, now=records.now(), role_names=["sales_rep"])
    rep = Site(site.runtime)
    rep.login("rep")
    page = rep.get("/app/customer/import")
    form = page.forms["import-upload"]
    form["file"] = Upload(str(workbook(tmp_path / "rep.xlsx", rows=[ROWS[1]], headers=HEADERS)))
    run_from(rep, form.submit(status=302).follow().forms["import-mapping"])
    created = customers(site.runtime)["北京华夏科技有限公司"]
    assert created["created_by"] == rep_id
    run_id = int(re.search(r"/import/runs/(\d+)/revert", rep.get("/app/customer/import").text).group(1))
    other = Site(site.runtime)
    with records_of(site.runtime) as records:
        directory.add_user(records.session, "rep2", PASSWORD, now=records.now(), role_names=["sales_rep"])
    other.login("rep2")
    assert "rep.xlsx" not in other.get("/app/customer/import").text      # each rep sees their own imports
    other.post(f"/app/customer/import/runs/{run_id}/revert", {}, status=404)
    assert "北京华夏科技有限公司" in customers(site.runtime)
    site.post(f"/app/customer/import/runs/{run_id}/revert", {}, status=302)   # an administrator may
    assert customers(site.runtime) == {}


def test_contacts_import_by_customer_title(site, existing, tmp_path):
    path = workbook(tmp_path / "contacts.xlsx", headers=["姓名", "所属客户", "移动电话", "生日"],
                    rows=[["张三", "广州市人易软件技术有限公司", 13800000000, "1980-05-06"],
                          ["李四", "不存在的公司", 13900000000, None]])
    page = site.get("/app/contact/import")
    form = page.forms["import-upload"]
    form["file"] = Upload(str(path))
    mapping = form.submit(status=302).follow()
    form = mapping.forms["import-mapping"]
    form["partial"] = True
    run_from(site, form)
    with records_of(site.runtime) as records:
        contacts = records.list("contact").items
    assert [(c["name"], c["customer_id"], c["mobile"]) for c in contacts] == [("张三", existing["id"], "13800000000")]
