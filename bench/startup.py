"""Start-up time and memory of the app with 100 generated entities of 50 fields each.

    python -m bench startup                           # 100 entities × 50 fields, 5 runs
    python -m bench startup --entities 200 --fields 50 --runs 10

Two instances are made (``crm init``, every installed plugin, SQLite), and ``crm db upgrade`` run
on both (not timed): the stock one, and the same with ``--entities`` generated entity files of
``--fields`` fields each in its ``custom/`` folder (text, numbers, money, dates, selects on a
generated dictionary, links to the previous entity, an index per entity; labels in zh_CN and en).
Each run starts a new Python process that builds the application as ``pserve`` does
(``crm.core.app.main`` with the instance's settings) and answers its first request
(``GET /api/v1/openapi.json``, which walks every entity). The table shows the median and p95 of
each phase in seconds, the peak RSS in MB, and the ratios wide / stock.
"""
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import load, machine, percentile
from crm.core import instance
from crm.core.runtime import DATABASE_ENV, Runtime

TYPES = ["text", "text", "text", "integer", "decimal", "money", "date", "datetime", "boolean", "select", "phone", "email",
         "textarea", "percent", "rating"]
CHILD = r"""
import json, os, resource, sys, time
start = time.perf_counter()
from wsgiref.util import setup_testing_defaults
from crm.core import instance
from crm.core.app import main
imported = time.perf_counter()
app = main({}, **instance.settings(sys.argv[1]))
built = time.perf_counter()
environ = {}
setup_testing_defaults(environ)
environ.update(PATH_INFO="/api/v1/openapi.json", REQUEST_METHOD="GET")
status = []
body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
answered = time.perf_counter()
assert status[0].startswith("200"), status
rss = int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) / 1024
print(json.dumps({"import": imported - start, "build": built - imported, "first": answered - built,
                  "total": answered - start, "rss": rss, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "paths": len(json.loads(body)["paths"])}))
"""


def add_arguments(parser):
    parser.add_argument("--entities", type=int, default=100, help="generated entities (default 100)")
    parser.add_argument("--fields", type=int, default=50, help="fields per generated entity (default 50)")
    parser.add_argument("--runs", type=int, default=5, help="process starts per instance (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the instance folders afterwards")


def generate(custom, entities, fields):
    """``entities`` entity files of ``fields`` fields in ``custom``, and the dictionary they use."""
    custom.mkdir(exist_ok=True)
    (custom / "x_bench_grade.json").write_text(json.dumps({
        "dictionary": "x_bench_grade", "label": {"zh_CN": "等级", "en": "Grade"},
        "items": [{"value": v, "label": {"zh_CN": f"{v} 级", "en": f"Grade {v}"}} for v in "ABCDE"]}, ensure_ascii=False))
    for e in range(entities):
        name = f"x_bench_{e:03d}"
        spec = {"x_name": {"type": "text", "label": {"zh_CN": "名称", "en": "Name"}, "required": True}}
        for f in range(1, fields):
            kind = TYPES[f % len(TYPES)]
            field = {"type": kind, "label": {"zh_CN": f"字段{f}", "en": f"Field {f}"}}
            if kind == "select":
                field["dictionary"] = "x_bench_grade"
            spec[f"x_f{f:02d}"] = field
        if e:
            spec["x_previous"] = {"type": "link", "entity": f"x_bench_{e - 1:03d}", "label": {"zh_CN": "上一个", "en": "Previous"}}
        doc = {"name": name, "label": {"zh_CN": f"实体{e}", "en": f"Entity {e}"}, "title_field": "x_name",
               "fields": spec, "indexes": [{"fields": ["x_name"]}], "list_columns": ["x_name", "x_f01", "x_f02"],
               "search_fields": ["x_name"]}
        (custom / f"{name}.json").write_text(json.dumps(doc, ensure_ascii=False))


def make_instance(folder):
    instance.init(folder, f"sqlite:///{folder / 'crm.sqlite'}")
    return folder


def upgrade(folder):
    runtime = Runtime(instance.settings(folder))
    try:
        runtime.upgrade()
        return len(runtime.metadata.entities)
    finally:
        runtime.dispose()


def start(folder):
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    if out.returncode:
        raise RuntimeError(f"the app did not start: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args):
    os.environ.pop(DATABASE_ENV, None)
    root = Path(tempfile.mkdtemp(prefix="crm-bench-startup-"))
    try:
        stock, wide = make_instance(root / "stock"), make_instance(root / "wide")
        generate(wide / "custom", args.entities, args.fields)
        counts = {"stock": upgrade(stock), "wide": upgrade(wide)}
        print(f"crm bench startup: {args.entities} generated entities × {args.fields} fields; {args.runs} process starts each")
        print(f"machine: {machine()}; entities: stock {counts['stock']}, wide {counts['wide']}")
        print(f"started {dt.datetime.now():%Y-%m-%d %H:%M}, {load()}")
        runs = {"stock": [], "wide": []}
        for _ in range(args.runs):  # interleaved, so that both see the same machine
            for name, folder in (("stock", stock), ("wide", wide)):
                runs[name].append(start(folder))
        print(f"\nseconds (median / p95 of {args.runs} starts), memory in MB (median); ratio = wide / stock (medians)\n")
        print(table(runs))
        print(f"\nfinished {dt.datetime.now():%Y-%m-%d %H:%M}, {load()}")
    finally:
        if args.keep:
            print(f"\nkept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def table(runs):
    phases = [("import", "import crm (Python modules)"), ("build", "build the app (metadata, tables, routes)"),
              ("first", "first request (openapi.json)"), ("total", "total"), ("rss", "RSS after first request, MB"),
              ("peak", "peak RSS, MB")]
    header = ["phase", "stock median / p95", "wide median / p95", "ratio"]
    lines = []
    for key, label in phases:
        stock, wide = [r[key] for r in runs["stock"]], [r[key] for r in runs["wide"]]
        fmt = "{:.0f}" if key in ("rss", "peak") else "{:.2f}"
        cell = lambda v: f"{fmt.format(statistics.median(v))} / {fmt.format(percentile(v, 95))}"
        lines.append([label, cell(stock), cell(wide), f"{statistics.median(wide) / statistics.median(stock):.2f}x"])
    lines.append(["OpenAPI paths", str(runs["stock"][0]["paths"]), str(runs["wide"][0]["paths"]), ""])
    widths = [max(len(row[i]) for row in [header] + lines) for i in range(len(header))]

    def fmt_row(row):
        return "  ".join([row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, len(row))])
    return "\n".join([fmt_row(header), "  ".join("-" * w for w in widths)] + [fmt_row(row) for row in lines])
