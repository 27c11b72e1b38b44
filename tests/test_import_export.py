"""Import from real .xlsx/.csv files and export back, through the service and the CLI."""
import datetime as dt

import openpyxl
import pytest
from click.testing import CliRunner

from crm.core import auth, directory as org, exporter, importer, tabular
from crm.core.errors import BadRequest, Forbidden

HEADERS = ["客户名称", "主要电话", "所属区域", "客户级别", "信用额度", "建档日期", "负责人", "备注", "微信号"]


def xlsx(path, rows, headers=HEADERS):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.fixture
def rep(runtime):
    with runtime.transaction() as records:
        org.add_user(records.session, "lina", "password-lina", now=records.now(), display_name="李娜", role_names=["sales_rep"])
        return auth.get_user(records.session, username="lina")


def customers(runtime):
    with runtime.transaction() as records:
        return {c["name"]: c for c in records.list("customer", limit=500).items}


def test_import_xlsx_with_labels_dates_and_users(runtime, rep, tmp_path):
    path = xlsx(tmp_path / "客户.xlsx", [
        ["北京华信科技有限公司", 13800138000, "北京", "A", 50000, dt.datetime(2026, 3, 1), "李娜", "老客户", "wx1"],
        ["上海贝尔", "021-55551234", "上海", "B", "8,000", "2026/04/02", "lina", None, None],
    ])
    with runtime.transaction() as records:
        result = importer.run(records, "customer", path)
    assert result.counts == {"created": 2, "updated": 0, "skipped": 0, "error": 0}
    assert result.unmapped == ["微信号"]
    found = customers(runtime)
    bj = found["北京华信科技有限公司"]
    assert bj["phone"] == "13800138000" and bj["region"] == "CN-BJ" and bj["level"] == "A"
    assert bj["registered_on"] == dt.date(2026, 3, 1) and bj["owner_id"] == rep["id"] and bj["mnemonic"] == "BJHXKJYXGS"
    assert found["上海贝尔"]["credit_limit"] == 8000 and found["上海贝尔"]["region"] == "CN-SH"


def test_bad_rows_commit_nothing_and_are_reported(runtime, tmp_path):
    path = xlsx(tmp_path / "bad.xlsx", [
        ["甲公司", "123", "北京", "A", 1, None, None, None, None],
        ["乙公司", "456", "火星", "A", 1, None, None, None, None],          # unknown region
        [None, "789", "北京", "Z", "abc", None, None, None, None],          # no name, bad level, bad number
        ["丙公司", "000", "北京", "B", 1, "2026-13-40", "nobody", None, None],  # bad date and user
    ])
    with runtime.transaction() as records, pytest.raises(importer.ImportFailed) as failed:
        importer.run(records, "customer", path)
    errors = {o.row: o for o in failed.value.result.errors}
    assert set(errors) == {3, 4, 5}
    assert "region" in errors[3].fields and {"level"} <= set(errors[4].fields) and "owner_id" in errors[5].fields
    assert customers(runtime) == {}
    out = tmp_path / "errors.xlsx"
    headers, rows = tabular.read(path)
    importer.write_errors(out, headers, rows, failed.value.result)
    error_headers, error_rows = tabular.read(out)
    assert error_headers[-1] == "错误 / error" and [r[1][0] for r in error_rows] == ["乙公司", None, "丙公司"]


def test_partial_import_and_revert(runtime, tmp_path):
    path = xlsx(tmp_path / "p.xlsx", [["甲公司", "1", "北京", "A", 1, None, None, None, None],
                                      ["乙公司", "2", "火星", "A", 1, None, None, None, None]])
    with runtime.transaction() as records:
        result = importer.run(records, "customer", path, partial=True)
    assert result.counts["created"] == 1 and result.counts["error"] == 1 and result.import_id
    assert set(customers(runtime)) == {"甲公司"}
    update = xlsx(tmp_path / "u.xlsx", [["甲公司", "999", "上海", "C", 2, None, None, "改过", None]])
    with runtime.transaction() as records:
        updated = importer.run(records, "customer", update, mode="update", match=["name"])
    assert updated.counts["updated"] == 1 and customers(runtime)["甲公司"]["phone"] == "999"
    with runtime.transaction() as records:
        assert importer.revert(records, updated.import_id) == {"removed": 0, "restored": 1}
    restored = customers(runtime)["甲公司"]
    assert restored["phone"] == "1" and restored["region"] == "CN-BJ" and restored["remark"] is None
    with runtime.transaction() as records:
        assert importer.revert(records, result.import_id) == {"removed": 1, "restored": 0}
        assert [t["title"] for t in records.trash("customer")] == ["甲公司"]
        with pytest.raises(BadRequest):
            importer.revert(records, result.import_id)


def test_duplicate_criteria_dry_run_and_upsert(runtime, tmp_path):
    with runtime.transaction() as records:
        records.create("customer", {"name": "甲公司", "phone": "111", "region": "CN-BJ"})
    path = xlsx(tmp_path / "d.xlsx", [["甲公司", "111", "北京", "A", None, None, None, None, None],
                                      ["甲公司", "222", "北京", "B", None, None, None, None, None],
                                      ["新公司", "333", "上海", "B", None, None, None, None, None],
                                      ["新公司", "333", "上海", "C", None, None, None, None, None]])
    with runtime.transaction() as records:
        by_name = importer.run(records, "customer", path, match=["name"], dry_run=True)
    assert [(o.row, o.action) for o in by_name.outcomes] == [(2, "skipped"), (3, "skipped"), (4, "created"), (5, "skipped")]
    assert "row 4" in by_name.outcomes[3].reason and not by_name.committed
    assert set(customers(runtime)) == {"甲公司"}                              # the dry run changed nothing
    with runtime.transaction() as records:
        by_phone = importer.run(records, "customer", path, match=["name", "phone"], mode="upsert")
    assert [o.action for o in by_phone.outcomes] == ["updated", "created", "created", "updated"]
    with runtime.transaction() as records:
        names = sorted((c["name"], c["phone"], c["level"]) for c in records.list("customer").items)
    assert names == [("新公司", "333", "C"), ("甲公司", "111", "A"), ("甲公司", "222", "B")]


def test_gbk_csv_and_remembered_mapping(runtime, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("公司,电话\n南京科技,025-1234\n".encode("gb18030"))
    with runtime.transaction() as records:
        with pytest.raises(BadRequest):
            importer.run(records, "customer", path)                      # nothing maps: clear error
        importer.run(records, "customer", path, mapping={"公司": "name", "电话": "phone"})
    path.write_bytes("公司,电话\n苏州科技,0512-1234\n".encode("gb18030"))
    with runtime.transaction() as records:
        assert importer.run(records, "customer", path).counts["created"] == 1   # mapping remembered
    assert customers(runtime)["苏州科技"]["phone"] == "0512-1234"


def test_malformed_file_is_a_clear_error(runtime, tmp_path):
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"this is not a spreadsheet")
    with runtime.transaction() as records:
        with pytest.raises(BadRequest, match="cannot read"):
            importer.run(records, "customer", broken)
        with pytest.raises(BadRequest, match="xlsx or .csv"):
            importer.run(records, "customer", tmp_path / "x.pdf")


def test_export_neutralizes_formulas_and_follows_permissions(runtime, rep, tmp_path):
    with runtime.transaction() as records:
        records.create("customer", {"name": "=HYPERLINK(\"http://evil\")", "remark": "+1 并且 @me", "level": "A",
                                    "owner_id": rep["id"], "credit_limit": 100})
        records.create("customer", {"name": "别人的客户"})
    out = tmp_path / "out.xlsx"
    with runtime.transaction() as records:
        assert exporter.export(records, "customer", out) == 2
    headers, rows = tabular.read(out)
    by_name = {r[headers.index("客户名称")]: r for _, r in rows}
    evil = by_name["'=HYPERLINK(\"http://evil\")"]
    assert evil[headers.index("备注")] == "'+1 并且 @me"
    assert evil[headers.index("客户级别")] == "A 重点客户"
    assert evil[headers.index("负责人")] == "李娜"
    book = openpyxl.load_workbook(out)
    assert all(cell.data_type != "f" for row in book.active.iter_rows() for cell in row)
    with runtime.transaction(user=rep) as records, pytest.raises(Forbidden):
        exporter.export(records, "customer", tmp_path / "no.csv")       # sales reps may not export
    with runtime.transaction() as records:
        from crm.core import access
        access.save_role(records.session, "exporter", {"zh_CN": "导出"}, {
            "entities": {"customer": {"read": "own", "export": "own"}}, "fields": {"customer": {"credit_limit": "hidden"}}})
        org.update_user(records.session, rep["id"], role_names=["exporter"])
    csv_out = tmp_path / "mine.csv"
    with runtime.transaction(user=rep) as records:
        assert exporter.export(records, "customer", csv_out) == 1
    headers, rows = tabular.read(csv_out)
    assert "信用额度" not in headers and len(rows) == 1


def test_cli_import_export_round_trip(runtime, tmp_path, monkeypatch, database_url):
    from crm.core import instance
    from crm.core.cli import cli
    folder = tmp_path / "inst"
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(folder)]).exit_code == 0
    path = xlsx(tmp_path / "in.xlsx", [["甲公司", "1", "北京", "A", 1, None, None, None, None],
                                       ["乙公司", "2", "火星", "A", 1, None, None, None, None]])
    failed = runner.invoke(cli, ["import", str(folder), "customer", str(path), "--errors", str(tmp_path / "e.csv")])
    assert failed.exit_code == 1 and "row 3: error" in failed.output and (tmp_path / "e.csv").exists()
    dry = runner.invoke(cli, ["import", str(folder), "customer", str(path), "--dry-run", "--match", "name"])
    assert dry.exit_code == 0 and "dry run: would have created 1" in dry.output
    ok = runner.invoke(cli, ["import", str(folder), "customer", str(path), "--partial"])
    assert ok.exit_code == 0 and "created 1" in ok.output and "import #1 committed" in ok.output
    out = tmp_path / "out.csv"
    exported = runner.invoke(cli, ["export", str(folder), "customer", str(out), "--filter", "name__contains=甲"])
    assert exported.exit_code == 0 and "1 records exported" in exported.output
    again = runner.invoke(cli, ["import", str(folder), "customer", str(out), "--match", "name", "--dry-run"])
    assert "skipped 1" in again.output
    reverted = runner.invoke(cli, ["imports", "revert", str(folder), "1"])
    assert reverted.exit_code == 0 and "1 removed" in reverted.output
