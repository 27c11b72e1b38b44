"""The import wizard's state between its steps (upload → mapping → dry run → run → result),
kept in the instance's shared ``files/`` folder so that any app server behind a load balancer
can take the next step, and none keeps anything in memory between requests.

One folder per upload, ``files/imports/<token>/`` (the token is random and only its uploader may
use it):

- ``upload/<file name>``: the uploaded file, as uploaded (under its own name, which the import
  run records);
- ``state.json``: entity, uploader, file name, and the choices of the mapping step (column
  mapping, mode, duplicate criteria, partial) once made;
- ``progress.json``: rows done of the dry run or run in progress, rewritten a few times a second
  by the request doing the work and read by the page's progress poll (``GET .../progress``) —
  whichever server answers it. It lives in ``files/`` rather than in the database because the
  work runs in one database transaction: its rows are invisible to other connections until the
  end, and on SQLite a second writing connection would wait for that transaction's lock;
- ``report.json``: the outcome of the last dry run or run, row by row;
- ``errors.xlsx`` / ``errors.csv``: the bad rows with a reason column (to fix and import again).

Folders older than :data:`KEEP_DAYS` days are removed when the next file is uploaded.
"""
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

import sqlalchemy as sa

from crm.core.attachments import _safe_name as safe_name
from crm.core.errors import NotFound, ValidationFailed
from crm.core.tables import imports

KEEP_DAYS = 2
SUFFIXES = (".xlsx", ".csv")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
PROGRESS_EVERY_SECONDS = 0.3
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def root(runtime):
    return runtime.instance_dir / "files" / "imports"


def _write_json(path, data):
    """Write atomically: a poll from another server never reads half a file."""
    partial = path.with_name(path.name + f".{secrets.token_hex(4)}.tmp")
    partial.write_text(json.dumps(data, ensure_ascii=False, default=str), "utf-8")
    os.replace(partial, path)


def _read_json(path, default=None):
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return default


class ImportSession:
    """One upload and what the wizard decided about it."""

    def __init__(self, folder, state):
        self.folder = folder
        self.state = state

    @property
    def token(self):
        return self.folder.name

    @property
    def source(self):
        return self.folder / "upload" / self.state["stored_name"]

    @property
    def errors_file(self):
        return self.folder / ("errors" + self.state["suffix"])

    def save(self, **changes):
        self.state.update(changes)
        _write_json(self.folder / "state.json", self.state)

    # --- progress ------------------------------------------------------------------------------

    def progress(self):
        return _read_json(self.folder / "progress.json", {"phase": None, "done": 0, "total": 0, "running": False})

    def progress_writer(self, phase, total):
        """A ``progress(n)`` callback for :func:`crm.core.importer.run` that rewrites
        ``progress.json`` at most every :data:`PROGRESS_EVERY_SECONDS`; ``.finish()`` at the end."""
        return ProgressWriter(self.folder / "progress.json", phase, total)

    def running(self):
        """True while a dry run or run of this upload is in progress (and alive: written lately)."""
        progress = self.progress()
        return bool(progress.get("running")) and time.time() - progress.get("at", 0) < 120

    # --- reports -------------------------------------------------------------------------------

    def save_report(self, phase, result, committed=None, message=None):
        outcomes = [{"row": o.row, "action": o.action, "record_id": o.record_id, "reason": o.reason} for o in result.outcomes]
        report = {"phase": phase, "dry_run": result.dry_run, "mode": result.mode, "mapping": result.mapping,
                  "unmapped": result.unmapped, "counts": result.counts, "import_id": result.import_id,
                  "committed": result.committed if committed is None else committed, "message": message,
                  "outcomes": outcomes}
        _write_json(self.folder / "report.json", report)
        return report

    def report(self):
        return _read_json(self.folder / "report.json")


class ProgressWriter:
    def __init__(self, path, phase, total):
        self.path, self.phase, self.total = path, phase, total
        self.done, self.written_at = 0, 0.0
        self._write(running=True)

    def __call__(self, n=1):
        self.done += n
        if time.monotonic() - self.written_at >= PROGRESS_EVERY_SECONDS:
            self._write(running=True)

    def finish(self):
        self._write(running=False)

    def _write(self, running):
        self.written_at = time.monotonic()
        _write_json(self.path, {"phase": self.phase, "done": self.done, "total": self.total, "running": running, "at": time.time()})


def start(runtime, stream, filename, entity, user_id, max_bytes=None):
    """Keep an uploaded file (a binary stream) for the wizard; returns the new session.
    Refuses other formats than .xlsx / .csv and files over ``crm.max_upload_bytes``."""
    suffix = Path(str(filename or "")).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValidationFailed(f"{Path(str(filename or '')).name or 'the file'}: use a .xlsx or .csv file", {"file": "unsupported format"})
    limit = max_bytes or int(runtime.settings.get("crm.max_upload_bytes", DEFAULT_MAX_BYTES))
    _clean_old(runtime)
    folder = root(runtime) / secrets.token_urlsafe(18)
    folder.mkdir(parents=True)
    session = ImportSession(folder, {"entity": entity, "user_id": user_id, "filename": Path(str(filename)).name[:255],
                                     "stored_name": safe_name(filename), "suffix": suffix, "created_at": time.time()})
    session.source.parent.mkdir()
    size = 0
    try:
        with open(session.source, "wb") as out:
            while chunk := stream.read(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise ValidationFailed(f"file larger than {limit // (1024 * 1024)} MB", {"file": "too large"})
                out.write(chunk)
        session.save()
    except BaseException:
        discard(session)
        raise
    return session


def load(runtime, token, entity, user_id):
    """The session ``token`` of ``user_id`` for ``entity``; NotFound for anyone else's (or none)."""
    folder = root(runtime) / token if TOKEN.match(token or "") else None
    state = _read_json(folder / "state.json") if folder else None
    if not state or state.get("entity") != entity or state.get("user_id") != user_id:
        raise NotFound("no such import")
    return ImportSession(folder, state)


def discard(session):
    shutil.rmtree(session.folder, ignore_errors=True)


def _clean_old(runtime):
    base = root(runtime)
    if not base.is_dir():
        return
    cutoff = time.time() - KEEP_DAYS * 86400
    for folder in base.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


# --- finished imports (table crm_imports, written by crm.core.importer) ----------------------------

def runs(records, entity_name, user_id=None, limit=20):
    """The latest imports into ``entity_name``, newest first; only ``user_id``'s when given."""
    stmt = sa.select(imports).where(imports.c.entity == entity_name)
    if user_id is not None:
        stmt = stmt.where(imports.c.created_by == user_id)
    return [dict(r) for r in records.session.execute(stmt.order_by(imports.c.id.desc()).limit(limit)).mappings()]


def run_row(records, import_id):
    row = records.session.execute(sa.select(imports).where(imports.c.id == import_id)).mappings().first()
    return dict(row) if row else None
