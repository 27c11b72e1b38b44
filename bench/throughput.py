"""Requests per second of the generated list and detail API beside a bare Pyramid JSON view.

    python -m bench throughput                        # SQLite, 10 000 customers, waitress and gunicorn
    python -m bench throughput --duration 10 --runs 5 --connections 16
    python -m bench throughput --database-url postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench

A temporary instance gets ``--rows`` customers (RecordService.create_many) and an API token for its
administrator. Each server is started as a separate process on 127.0.0.1 with the same process
model for both applications: waitress (one process, 8 threads, as crm.ini is written) and
gunicorn (2 sync workers). The load comes from ``wrk`` (Debian package ``wrk``) in its own
process: ``--connections`` keep-alive connections from 2 threads for ``--duration`` seconds,
after a 2 s warm-up; ``--runs`` runs per endpoint, interleaved CRM / bare. The bare application
(bench/wsgi.py) is Pyramid with one JSON view per endpoint returning the very document the
CRM's API returned (captured once), so both sides render the same bytes; the difference is what
the CRM does per request: authentication, the query through RecordService with access
checks, conversion to JSON values.
"""
import datetime as dt
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.common import analyze, print_context, temporary_instance
from bench.records import CustomerMaker, dictionary_values, load, make_users, percentile
from crm.core import tokens
from crm.core.runtime import DATABASE_ENV

ENTITY = "customer"
LUA = """
done = function(summary, latency, requests)
  io.write(string.format("crm-latency-us %d %d %d\\n", latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def add_arguments(parser):
    parser.add_argument("--rows", type=int, default=10_000, help="customers in the database (default 10000)")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per endpoint and server (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--servers", default="waitress,gunicorn", help="servers to measure (default waitress,gunicorn)")
    parser.add_argument("--database-url", help="a PostgreSQL URL naming a new database (default: SQLite in the instance)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the generated data")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder and the database afterwards")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="an [app:main] setting for the CRM's servers, e.g. crm.request_turn_wait_ms=0 (repeatable)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(server, app, port):
    if server == "waitress":
        return [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=8", "--call", f"bench.wsgi:{app}"]
    if server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                f"bench.wsgi:{app}()"]
    raise ValueError(server)


class Server:
    """One server process serving one application, started and stopped by its own process group."""

    def __init__(self, server, app, env, probe, log):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "wb")  # a file, not a pipe: waitress logs its queue depth under load, and a full pipe blocks it
        self.process = subprocess.Popen(server_command(server, app, self.port), env=env, cwd=Path(__file__).parent.parent,
                                        stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(self.url + probe[0], headers=probe[1]), timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{server} {app} did not start: {Path(log).read_text(errors='replace')[-2000:] or 'timeout'}")
            time.sleep(0.3)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.log.close()


def wrk(url, headers, duration, connections, script):
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p50, p95, p99 = (int(x) / 1000 for x in re.search(r"crm-latency-us (\d+) (\d+) (\d+)", out).groups())
    return {"rate": rate, "p50": p50, "p95": p95, "p99": p99, "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1).strip() if errors else ""}


def python_path():
    """The servers' import path: this checkout's bench package, then the caller's own path (a
    PYTHONPATH naming another checkout's ``crm`` measures that one with this bench)."""
    return os.pathsep.join([str(Path(__file__).parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])])


def settings(pairs):
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"bench: --setting wants KEY=VALUE, not {pair!r}")
        yield key.strip(), value.strip()


def prepare(runtime, rows, seed):
    """Customers, an administrator's API token, and one list and one detail document."""
    admin, reps = make_users(runtime)
    maker = CustomerMaker(seed, dictionary_values(runtime), [r["id"] for r in reps])
    done = 0
    while done < rows:
        with runtime.transaction(user=admin) as records:
            batch = [maker() for _ in range(min(1000, rows - done))]
            for result in records.create_many(ENTITY, batch):
                if isinstance(result, Exception):
                    raise result
        done += len(batch)
    analyze(runtime.engine)
    with runtime.transaction() as records:
        token = tokens.create_token(records.session, admin["id"], name="bench", now=records.now())
        sample = records.list(ENTITY, limit=1, sort="id").items[0]["id"] + rows // 2
    return token, sample


def run(args):
    os.environ.pop(DATABASE_ENV, None)
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not installed (apt-get install -y wrk)")
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    with temporary_instance(args.database_url, "crm-bench-http-", args.keep) as (runtime, folder):
        print(f"crm bench throughput: {args.rows} customers on {runtime.engine.dialect.name}; servers {', '.join(servers)}; "
              f"wrk -t2 -c{args.connections} -d{args.duration}s, {args.runs} runs per endpoint")
        print_context(runtime)
        if args.setting:
            print("settings: " + ", ".join(args.setting))
        token, sample = prepare(runtime, args.rows, args.seed)
        runtime.dispose()  # the servers are other processes: this one needs no connection meanwhile
        auth = {"Authorization": f"Bearer {token}"}
        endpoints = [("list", f"/api/v1/{ENTITY}?limit=50", "/bare/list"),
                     ("detail", f"/api/v1/{ENTITY}/{sample}", "/bare/detail")]
        payload = {}
        env = {**os.environ, "CRM_BENCH_INSTANCE": str(folder), "CRM_BENCH_PAYLOAD": str(folder / "payload.json"),
               "CRM_BENCH_SETTINGS": json.dumps(dict(settings(args.setting))), "PYTHONPATH": python_path()}
        script = folder / "latency.lua"
        script.write_text(LUA)
        results = []
        for server in servers:
            crm = Server(server, "crm_app", env, (endpoints[0][1], auth), folder / f"{server}-crm.log")
            try:
                for name, path, _ in endpoints:
                    with urllib.request.urlopen(urllib.request.Request(crm.url + path, headers=auth)) as r:
                        payload[name] = json.load(r)
                (folder / "payload.json").write_text(json.dumps(payload, ensure_ascii=False))
                bare = Server(server, "bare_app", env, ("/bare/list", {}), folder / f"{server}-bare.log")
                try:
                    for name, path, bare_path in endpoints:
                        sides = {"crm": [], "bare": []}
                        for url, headers in ((crm.url + path, auth), (bare.url + bare_path, {})):
                            wrk(url, headers, 2, args.connections, script)  # warm-up
                        for _ in range(args.runs):
                            sides["crm"].append(wrk(crm.url + path, auth, args.duration, args.connections, script))
                            sides["bare"].append(wrk(bare.url + bare_path, {}, args.duration, args.connections, script))
                        results.append((server, name, path, sides))
                        print(f"  {server} {name}: crm {statistics.median(r['rate'] for r in sides['crm']):.0f} req/s, "
                              f"bare {statistics.median(r['rate'] for r in sides['bare']):.0f} req/s ({load()})", file=sys.stderr)
                finally:
                    bare.stop()
            finally:
                crm.stop()
        print(f"\nrequests/s: median of {args.runs} runs (p95 of the runs' rates in brackets: the slowest run); "
              f"latency: median over the runs of wrk's per-run percentiles, ms; ratio = CRM / bare\n")
        print(table(results))
        problems = [(s, n, side, r) for s, n, _, sides in results for side, runs in sides.items() for r in runs
                    if r["non2xx"] or r["socket_errors"]]
        for server, name, side, r in problems:
            print(f"WARNING {server} {name} {side}: {r['non2xx']} non-2xx responses, socket errors: {r['socket_errors'] or 'none'}")
        print(f"\nfinished {dt.datetime.now():%Y-%m-%d %H:%M}, {load()}")


def table(results):
    header = ["server", "endpoint", "CRM req/s", "bare req/s", "ratio", "CRM p50/p95 ms", "bare p50/p95 ms"]
    lines = []
    for server, name, path, sides in results:
        crm, bare = ({k: [r[k] for r in sides[side]] for k in ("rate", "p50", "p95")} for side in ("crm", "bare"))
        crm_rate, bare_rate = statistics.median(crm["rate"]), statistics.median(bare["rate"])
        lines.append([server, f"{name} {path}", f"{crm_rate:.0f} ({-percentile([-x for x in crm['rate']], 95):.0f})",
                      f"{bare_rate:.0f} ({-percentile([-x for x in bare['rate']], 95):.0f})", f"{crm_rate / bare_rate:.2f}" if bare_rate else "-",
                      f"{statistics.median(crm['p50']):.1f} / {statistics.median(crm['p95']):.1f}",
                      f"{statistics.median(bare['p50']):.1f} / {statistics.median(bare['p95']):.1f}"])
    widths = [max(len(row[i]) for row in [header] + lines) for i in range(len(header))]

    def fmt(row):
        return "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1])] + [row[i].rjust(widths[i]) for i in range(2, len(row))])
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(row) for row in lines])
