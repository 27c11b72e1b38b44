"""Import customers from a real .xlsx with duplicate checking, beside reading the same file alone.

    python -m bench importing                         # SQLite, 100 000 rows, match name + phone
    python -m bench importing --rows 20000 --runs 5
    python -m bench importing --plugins none          # the core alone (no plugin hooks)
    python -m bench importing --database-url postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench

A temporary instance is made (as in ``bench records``) with an administrator and eight sales reps.
The file is written with openpyxl: zh_CN column headers and cells as people type them (dictionary
labels such as "A 重点客户", district names, the reps' display names, dates), Chinese company
names and phone numbers from Faker zh_CN; 1 % of the rows repeat an earlier row of the file, and
the first 10 % are imported (committed) before the timing, so that every timed import finds
existing records, in-file repeats and new rows. Each timed run is ``crm.core.importer.run`` —
the code behind ``crm import`` and the import wizard — in mode create with ``--match`` (default
``name,phone``), as the administrator, rolled back at the end, so every run starts from the same
database. Beside it, ``crm.core.tabular.read`` of the same file (python-calamine): the floor.
"""
import datetime as dt
import os
import statistics
import sys
import time

import openpyxl
import sqlalchemy as sa
from tqdm import tqdm

from bench.common import print_context, temporary_instance
from bench.records import CustomerMaker, dictionary_values, load, make_users, percentile
from crm.core import importer, tabular
from crm.core.runtime import DATABASE_ENV, Runtime
from crm.core.tables import dictionary_items

ENTITY = "customer"
COLUMNS = ["name", "phone", "category", "agent_level", "level", "status", "region", "industry", "source", "nature",
           "company_scale", "email", "address", "postcode", "employee_count", "credit_rating", "owner_id", "registered_on"]
REPEATED = 0.01     # share of the rows that repeat an earlier row of the file
PRELOADED = 0.10    # share of the rows imported before the timing (then found as duplicates)


def add_arguments(parser):
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--match", default="name,phone", help="duplicate criteria (default name,phone)")
    parser.add_argument("--plugins", default="*", help="crm.plugins of the instance: * (default, every installed "
                                                       "plugin, as crm init writes it), names, or none")
    parser.add_argument("--database-url", help="a PostgreSQL URL naming a new database (default: SQLite in the instance)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the generated data")
    parser.add_argument("--profile", action="store_true", help="profile one more import with cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder and the database afterwards")


def labels(runtime):
    """{dictionary: {value: zh_CN label}}: the words people type into a spreadsheet."""
    with runtime.engine.connect() as connection:
        rows = connection.execute(sa.select(dictionary_items.c.dictionary, dictionary_items.c.value, dictionary_items.c.label))
        out = {}
        for dictionary, value, label in rows:
            out.setdefault(dictionary, {})[value] = label.get("zh_CN") if isinstance(label, dict) else label
    return out


def write_xlsx(path, runtime, rows, maker, owners):
    """The file to import: zh_CN headers, cells as labels, REPEATED of the rows repeated."""
    entity = runtime.metadata[ENTITY]
    words = labels(runtime)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("客户")
    sheet.append([entity.fields[c].label_in("zh_CN") for c in COLUMNS])
    written = []
    every = int(1 / REPEATED)
    for i in tqdm(range(rows), desc="write .xlsx", unit="row", file=sys.stderr, disable=None):
        if i and i % every == 0:
            cells = written[maker.rnd.randrange(len(written))]
        else:
            values = maker()
            cells = []
            for name in COLUMNS:
                value = values.get(name)
                field = entity.fields[name]
                if value is not None and field.dictionary:
                    value = words[field.dictionary][value]
                elif name == "owner_id":
                    value = owners[value]
                elif name == "registered_on":
                    value = dt.date.fromisoformat(value)
                cells.append(value)
        written.append(cells)
        sheet.append(cells)
    book.save(path)


def time_read(path, runs):
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        headers, rows = tabular.read(path)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return times, cpu, len(rows)


def time_import(runtime, user, path, match, runs, bar_label):
    """Seconds per import (rolled back afterwards), the counts of the last run, statements sent,
    seconds spent in the driver's execute calls (the database's own work, on SQLite in this process)."""
    times, cpu, counts, statements, in_driver = [], [], None, [], []
    counter = {"n": 0, "driver": 0.0, "since": 0.0}

    def count(*args, **kwargs):
        counter["n"] += 1
        counter["since"] = time.perf_counter()

    def done(*args, **kwargs):
        counter["driver"] += time.perf_counter() - counter["since"]
    sa.event.listen(runtime.engine, "before_cursor_execute", count)
    sa.event.listen(runtime.engine, "after_cursor_execute", done)
    try:
        for run in range(runs):
            session = runtime.session()
            records = runtime.records(session, user=user)
            try:
                with tqdm(desc=f"{bar_label} {run + 1}/{runs}", unit="row", file=sys.stderr, disable=None) as bar:
                    before, driver_before = counter["n"], counter["driver"]
                    start, start_cpu = time.perf_counter(), time.process_time()
                    result = importer.run(records, ENTITY, path, match=match, progress=bar.update)
                    times.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - start_cpu)
                    statements.append(counter["n"] - before)
                    in_driver.append(counter["driver"] - driver_before)
                counts = result.counts
                one_by_one = sorted(records._one_by_one)
            finally:
                session.rollback()
                session.close()
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", count)
        sa.event.remove(runtime.engine, "after_cursor_execute", done)
    return times, cpu, counts, statements, in_driver, one_by_one


def preload(runtime, user, path, share, folder):
    """Import the first ``share`` of the file (committed): the records the timed runs find again."""
    headers, rows = tabular.read(path)
    first = folder / "preload.xlsx"
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(headers)
    for _, cells in rows[:int(len(rows) * share)]:
        sheet.append(cells)
    book.save(first)
    with runtime.transaction(user=user) as records:
        return importer.run(records, ENTITY, first, match=["name", "phone"], partial=True).counts


def summary(label, times, cpu, rows):
    median, cpu_median = statistics.median(times), statistics.median(cpu)
    return {"label": label, "rows": rows, "median": median, "p95": percentile(times, 95), "rate": rows / median,
            "cpu": cpu_median, "cpu_rate": rows / cpu_median}


def table(lines, floor):
    header = ["step", "rows", "median s", "p95 s", "rows/s", "CPU s", "rows/CPU s", "ratio"]
    cells = [[r["label"], str(r["rows"]), f"{r['median']:.2f}", f"{r['p95']:.2f}", f"{r['rate']:.0f}", f"{r['cpu']:.2f}",
              f"{r['cpu_rate']:.0f}", f"{r['median'] / floor['median']:.2f}x"] for r in lines]
    widths = [max(len(row[i]) for row in [header] + cells) for i in range(len(header))]

    def fmt(row):
        return "  ".join([row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, len(row))])
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(row) for row in cells])


def run(args):
    os.environ.pop(DATABASE_ENV, None)
    match = [m.strip() for m in args.match.split(",") if m.strip()]

    def configure(settings):
        if args.plugins == "none":
            settings["crm.plugins.disabled"] = " ".join(Runtime(settings).plugins.installed)
        else:
            settings["crm.plugins"] = args.plugins
        return settings

    with temporary_instance(args.database_url, "crm-bench-import-", args.keep, configure) as (runtime, folder):
        print(f"crm bench importing: {args.rows} rows from .xlsx into {ENTITY}, match {'+'.join(match)}, "
              f"on {runtime.engine.dialect.name} ({runtime.engine.url.render_as_string(hide_password=True)})")
        print_context(runtime)

        admin, reps = make_users(runtime)
        maker = CustomerMaker(args.seed, dictionary_values(runtime), [r["id"] for r in reps])
        path = folder / "customers.xlsx"
        write_xlsx(path, runtime, args.rows, maker, {r["id"]: r["display_name"] for r in reps})
        print(f"file: {path.stat().st_size / 1e6:.1f} MB, {len(COLUMNS)} columns")
        preloaded = preload(runtime, admin, path, PRELOADED, folder)
        print(f"preloaded (committed): {preloaded}")
        with runtime.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")

        read_times, read_cpu, rows = time_read(path, args.runs)
        import_times, import_cpu, counts, statements, in_driver, one_by_one = time_import(runtime, admin, path, match,
                                                                                          args.runs, "import")
        floor = summary("read .xlsx alone (python-calamine)", read_times, read_cpu, rows)
        lines = [floor, summary(f"import, match {'+'.join(match)} (rolled back)", import_times, import_cpu, rows)]
        print(f"\n{args.runs} timed runs of each side; ratio = median / median of reading the file alone (wall time); "
              f"CPU s = this process's CPU time (the SQLite engine runs in it; a PostgreSQL server's does not count)\n")
        print(table(lines, floor))
        print(f"\nlast import: {counts}; {statistics.median(statements):.0f} SQL statements per import "
              f"({statistics.median(statements) / rows:.2f} per row); "
              + (f"created one by one (hooks read the database): {', '.join(one_by_one)}" if one_by_one
                 else "created in batches of " + str(importer.BATCH)))
        driver = statistics.median(in_driver)
        print(f"time in the driver's execute calls (the database's own work{', in this process' if runtime.engine.dialect.name == 'sqlite' else ''}): "
              f"{driver:.2f} s a run (median), {driver / statistics.median(import_times):.0%} of the import; "
              f"reading the file + that: {statistics.median(read_times) + driver:.2f} s, "
              f"{rows / (statistics.median(read_times) + driver):.0f} rows/s")
        print(f"\nfinished {dt.datetime.now():%Y-%m-%d %H:%M}, {load()}")
        if args.profile:
            profile(runtime, admin, path, match)


def profile(runtime, user, path, match):
    import cProfile
    import pstats
    profiler = cProfile.Profile()
    session = runtime.session()
    try:
        profiler.enable()
        importer.run(runtime.records(session, user=user), ENTITY, path, match=match)
        profiler.disable()
    finally:
        session.rollback()
        session.close()
    print("\ncProfile of one import (internal time):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(30)
