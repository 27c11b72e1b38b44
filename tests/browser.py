"""What the browser tests share: Debian's Chromium driven by Playwright (nothing downloaded),
the app served by waitress on 127.0.0.1 in a background thread, and logging in."""
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# without the background-networking flags Chromium keeps trying hosts this closed network refuses
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30000   # a wait, not an assertion: CI machines can be slow
ARTIFACTS = Path(__file__).resolve().parent / "_artifacts"


def playwright_api():
    """The Playwright module, after skipping the test when the browser is missing."""
    api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"the browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    return api


def sqlite_runtime(folder, extra_plugins=()):
    """A fresh, upgraded SQLite instance in ``folder`` (what a browser test serves), with
    ``extra_plugins`` ((name, object) pairs) besides the installed ones."""
    from crm.core.runtime import Runtime
    (folder / "files").mkdir(exist_ok=True)
    runtime = Runtime({"sqlalchemy.url": f"sqlite:///{folder / 'crm.sqlite'}", "crm.instance_dir": str(folder),
                       "crm.secret": "browser-test-secret-0123456789abcdef"}, extra_plugins=extra_plugins)
    runtime.upgrade()
    return runtime


@contextmanager
def served(app):
    """Serve ``app`` with waitress on a free port; yields the base URL."""
    from waitress.server import create_server
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    closing = threading.Event()

    def run():
        try:
            server.run()
        except OSError:  # select() on a socket close() shut from the test's thread (waitress has no
            if not closing.is_set():  # thread-safe stop; webtest's StopableWSGIServer does the same)
                raise

    threading.Thread(target=run, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        closing.set()
        server.close()


@contextmanager
def chromium(api):
    with api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, errors):
    """A page in a fresh context; JavaScript errors are appended to ``errors``."""
    page = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN").new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def login(page, base, username, password):
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + "/app")
