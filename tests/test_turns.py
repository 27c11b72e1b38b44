"""Requests of one process take turns on SQLite (crm.core.web.turns), served by a real waitress
with several threads: short requests run one after the other, a long one holds the others up
for the configured wait only, PostgreSQL and ``crm.request_turn_wait_ms = 0`` run them side by side."""
import threading
import time
import urllib.request

import pytest
from pyramid.interfaces import ITweens

from crm.core.app import make_app
from crm.core.errors import ConfigurationError
from crm.core.web import turns
from crm.hooks import hookimpl
from tests.browser import served


class SlowViews:
    """A plugin with one view that sleeps ``ms`` and records how many such requests ran at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.spans = {}

    @hookimpl
    def crm_web_config(self, config):
        config.add_route("slowviews.sleep", "/slowviews/sleep/{name}")
        config.add_view(self.sleep, route_name="slowviews.sleep", renderer="string")

    def sleep(self, request):
        started = time.monotonic()
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(int(request.GET["ms"]) / 1000)
        with self.lock:
            self.running -= 1
        self.spans[request.matchdict["name"]] = (started, time.monotonic())
        return "ok"


def fetch_at_once(base, requests):
    """GET every (name, ms, delay) at once from its own thread, each after its delay in ms."""
    def get(name, ms, delay):
        time.sleep(delay / 1000)
        with urllib.request.urlopen(f"{base}/slowviews/sleep/{name}?ms={ms}", timeout=30) as response:
            assert response.read() == b"ok"
    threads = [threading.Thread(target=get, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def serve(make_runtime, **settings):
    views = SlowViews()
    runtime = make_runtime(plugins=[("slowviews", views)], **settings)
    return views, served(make_app(runtime))


def test_short_requests_take_turns(make_runtime):
    views, server = serve(make_runtime, **{"crm.request_turn_wait_ms": "5000"})
    with server as base:
        fetch_at_once(base, [(f"r{i}", 40, 0) for i in range(4)])
    assert views.most == 1
    spans = sorted(views.spans.values())
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:]))


def test_turns_are_taken_by_default_on_sqlite_only(make_runtime, database_url):
    app = make_app(make_runtime())
    names = app.registry.getUtility(ITweens).implicit()
    assert (("crm.core.web.turns.turns_tween_factory" in [name for name, _ in names])
            == database_url.startswith("sqlite"))


def test_a_long_request_holds_the_others_up_for_the_wait_only(make_runtime):
    views, server = serve(make_runtime, **{"crm.request_turn_wait_ms": "100"})
    with server as base:
        fetch_at_once(base, [("long", 1500, 0), ("short", 10, 200)])
    long, short = views.spans["long"], views.spans["short"]
    assert views.most == 2
    assert short[1] < long[1]  # done while the long one still ran
    assert short[0] - long[0] < 0.9  # asked at 0.2 s, started after the wait (0.1 s), with room for a slow machine


def test_turns_can_be_turned_off(make_runtime, database_url):
    views, server = serve(make_runtime, **{"crm.request_turn_wait_ms": "0"})
    with server as base:
        fetch_at_once(base, [(f"r{i}", 200, 0) for i in range(3)])
    assert views.most > 1


def test_the_wait_setting():
    assert turns.turn_wait_seconds({}, "sqlite") == 0.05
    assert turns.turn_wait_seconds({}, "postgresql") == 0
    assert turns.turn_wait_seconds({"crm.request_turn_wait_ms": " "}, "sqlite") == 0.05
    assert turns.turn_wait_seconds({"crm.request_turn_wait_ms": "20"}, "postgresql") == 0.02
    assert turns.turn_wait_seconds({"crm.request_turn_wait_ms": "0"}, "sqlite") == 0
    for bad in ("soon", "-5", "nan", "inf"):
        with pytest.raises(ConfigurationError, match="crm.request_turn_wait_ms"):
            turns.turn_wait_seconds({"crm.request_turn_wait_ms": bad}, "sqlite")
