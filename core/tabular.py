"""Reading and writing spreadsheets (.xlsx via python-calamine / openpyxl, .csv), the one place
that knows file formats; importer and exporter deal in rows only."""
import csv
import datetime as dt
import io
from pathlib import Path

from crm.core.errors import BadRequest

EXCEL = (".xlsx", ".xlsm", ".xls", ".ods")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def read(path):
    """(headers, [(row number, [cells])]) from the first sheet; empty rows are left out.
    Row numbers are the spreadsheet's own (the header is row 1)."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in EXCEL:
            from python_calamine import CalamineWorkbook
            sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
            rows = sheet.to_python(skip_empty_area=False)
        elif suffix == ".csv":
            rows = list(csv.reader(io.StringIO(_decode(path.read_bytes()))))
        else:
            raise BadRequest(f"{path.name}: use a .xlsx or .csv file", {"file": "unsupported format"})
    except BadRequest:
        raise
    except FileNotFoundError:
        raise BadRequest(f"{path}: no such file", {"file": "not found"})
    except Exception as e:  # calamine raises its own types for damaged files
        raise BadRequest(f"{path.name}: cannot read the file ({type(e).__name__}: {e})", {"file": "unreadable"})
    numbered = [(n, [None if c == "" else c for c in r]) for n, r in enumerate(rows, start=1) if any(c not in (None, "") for c in r)]
    if not numbered:
        raise BadRequest(f"{path.name}: the file is empty", {"file": "empty"})
    (_, headers), data = numbered[0], numbered[1:]
    headers = [str(h).strip() if h is not None else "" for h in headers]
    width = len(headers)
    return headers, [(n, (cells + [None] * width)[:width]) for n, cells in data]


def _decode(raw):
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadRequest("the CSV file is neither UTF-8 nor GBK", {"file": "unknown encoding"})


def neutralize(value):
    """Cells starting like a formula are prefixed with ' so spreadsheets show them as text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _cell(value):
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return neutralize(value)


class Writer:
    """Rows to .xlsx (openpyxl, write-only: constant memory) or .csv (UTF-8 with BOM, for Excel)."""

    def __init__(self, path, headers):
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix == ".xlsx":
            from openpyxl import Workbook
            self.book = Workbook(write_only=True)
            self.sheet = self.book.create_sheet()
            self.sheet.append(headers)
        elif self.suffix == ".csv":
            self.file = open(self.path, "w", newline="", encoding="utf-8-sig")
            self.csv = csv.writer(self.file)
            self.csv.writerow(headers)
        else:
            raise BadRequest(f"{self.path.name}: use a .xlsx or .csv file name", {"file": "unsupported format"})

    def row(self, values):
        values = [_cell(v) for v in values]
        if self.suffix == ".xlsx":
            self.sheet.append(values)
        else:
            self.csv.writerow(["" if v is None else v for v in values])

    def close(self):
        if self.suffix == ".xlsx":
            self.book.save(self.path)
        else:
            self.file.close()
