"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL, instances, a clock.

PostgreSQL: every test gets its own schema in the database named by CRM_TEST_PG_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres); .ci/run creates a throw-away database for
each run. Set CRM_TEST_DATABASES=sqlite to run against SQLite only.
"""
import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa

from argon2 import PasswordHasher

from crm.core import auth
from crm.core.runtime import Runtime

# Real argon2, with cheap parameters: the defaults cost ~0.3 s per hash on CI's machine.
# Verification reads the parameters from each hash, so nothing else changes.
auth.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

PG_URL = os.environ.get("CRM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DATABASES = os.environ.get("CRM_TEST_DATABASES", "sqlite,postgresql").split(",")


def _pg_available():
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


PG_AVAILABLE = "postgresql" in DATABASES and _pg_available()


class Clock:
    """A controllable clock: tests move time with ``advance``."""

    def __init__(self, now=dt.datetime(2026, 11, 23, 9, 30, 0)):
        self.current = now

    def __call__(self):
        return self.current

    def advance(self, **kwargs):
        self.current += dt.timedelta(**kwargs)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=[d for d in ("sqlite", "postgresql") if d in DATABASES])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.sqlite'}"
        return
    if not PG_AVAILABLE:
        pytest.skip("PostgreSQL is not reachable at " + PG_URL)
    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def pg_url():
    """The PostgreSQL server's URL, for a test of what happens on PostgreSQL alone (the engine's
    pool and driver); skipped where there is no server."""
    if not PG_AVAILABLE:
        pytest.skip("PostgreSQL is not reachable at " + PG_URL)
    return PG_URL


@pytest.fixture
def instance_dir(tmp_path):
    path = tmp_path / "instance"
    (path / "custom").mkdir(parents=True)
    (path / "files").mkdir()
    return path


@pytest.fixture
def make_runtime(database_url, instance_dir, clock, monkeypatch):
    """Build (and upgrade) a runtime over the test database; extra plugins as (name, object)."""
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    made = []

    def make(plugins=(), upgrade=True, **settings):
        runtime = Runtime({"sqlalchemy.url": database_url, "crm.instance_dir": str(instance_dir),
                           "crm.plugins": settings.pop("enabled", "*"), **settings},
                          extra_plugins=plugins, clock=clock)
        if upgrade:
            runtime.upgrade()
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.dispose()


@pytest.fixture
def runtime(make_runtime):
    return make_runtime()
