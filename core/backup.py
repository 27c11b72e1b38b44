"""``crm backup`` / ``crm restore``: one .tar.gz with everything an instance owns.

The archive holds ``crm.ini``, ``custom/``, ``files/`` and the database: for SQLite a consistent
copy made with SQLite's online backup API (safe while the app runs), for PostgreSQL a
``pg_dump --format=custom`` file (restored with ``pg_restore --clean --if-exists``).
"""
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from crm.core.errors import BadRequest, ConfigurationError

MANIFEST = "crm-backup.json"


def _pg_args(url):
    url = make_url(url)
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432), "--username", url.username or "postgres",
            "--dbname", url.database]
    env = dict(os.environ, **({"PGPASSWORD": url.password} if url.password else {}))
    options = url.query.get("options")   # e.g. -csearch_path=... (tests, schemas)
    if options:
        options = options if isinstance(options, str) else " ".join(options)
        env["PGOPTIONS"] = options
        # an instance that lives in its own schema backs up and restores that schema only, never the
        # other instances (or test runs) sharing the database
        schema = re.search(r"search_path\s*=\s*([^\s,]+)", options)
        if schema:
            args += ["--schema", schema.group(1)]
    return args, env


def _tool(name):
    path = shutil.which(name)
    if path is None:
        raise ConfigurationError(f"{name} is not installed; it is needed to back up or restore PostgreSQL")
    return path


def backup(runtime, output=None):
    """Write the archive; returns its path."""
    folder = runtime.instance_dir
    stamp = runtime.clock().strftime("%Y%m%d-%H%M%S")
    output = Path(output) if output else folder / "backups" / f"crm-{stamp}.tar.gz"
    output.parent.mkdir(parents=True, exist_ok=True)
    url = runtime.database_url
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if url.startswith("sqlite"):
            database, kind = tmp / "database.sqlite", "sqlite"
            source = sqlite3.connect(make_url(url).database)
            target = sqlite3.connect(database)
            with target:
                source.backup(target)
            source.close()
            target.close()
        else:
            database, kind = tmp / "database.pgdump", "postgresql"
            args, env = _pg_args(url)
            subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(database), *args],
                           env=env, check=True, capture_output=True)
        manifest = {"created_at": dt.datetime.now().isoformat(timespec="seconds"), "database": kind}
        (tmp / MANIFEST).write_text(json.dumps(manifest), "utf-8")
        with tarfile.open(output, "w:gz") as archive:
            archive.add(tmp / MANIFEST, MANIFEST)
            archive.add(database, database.name)
            for name in ("crm.ini", "custom", "files"):
                if (folder / name).exists():
                    archive.add(folder / name, name)
    return output


def restore(runtime, archive_path):
    """Put an archive back: folders and files replace the instance's, the database is restored."""
    archive_path = Path(archive_path)
    if not archive_path.is_file():
        raise BadRequest(f"{archive_path}: no such file")
    folder = runtime.instance_dir
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive_path, "r:gz") as archive:
        tmp = Path(tmp)
        names = archive.getnames()
        if MANIFEST not in names:
            raise BadRequest(f"{archive_path.name} is not a CRM backup")
        archive.extractall(tmp, filter="data")
        manifest = json.loads((tmp / MANIFEST).read_text("utf-8"))
        url = runtime.database_url
        runtime.dispose()
        if manifest["database"] == "sqlite":
            if not url.startswith("sqlite"):
                raise BadRequest("this backup holds a SQLite database but the instance uses PostgreSQL")
            source = sqlite3.connect(tmp / "database.sqlite")
            target = sqlite3.connect(make_url(url).database, timeout=30)
            with target:
                source.backup(target)   # through SQLite itself: WAL and other connections stay consistent
            source.close()
            target.close()
        else:
            if url.startswith("sqlite"):
                raise BadRequest("this backup holds a PostgreSQL database but the instance uses SQLite")
            args, env = _pg_args(url)
            subprocess.run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", *args, str(tmp / "database.pgdump")],
                           env=env, check=True, capture_output=True)
        for name in ("custom", "files"):
            if (tmp / name).exists():
                shutil.rmtree(folder / name, ignore_errors=True)
                shutil.copytree(tmp / name, folder / name)
    return manifest
