"""Fixtures for testing the REST API through HTTP: the WSGI app over a test runtime (with the
deals test plugin), a user, and a client that sends the user's API token.

Import the fixtures into a test module: ``from tests.api_fixtures import api, make_api  # noqa: F401``.
"""
import pytest
from webtest import TestApp

from crm.core import auth
from crm.core.app import make_app
from tests.plugin_fixtures import deals_plugin

PASSWORD = "s3cret-pass"


class Api:
    """A WebTest client for /api/v1 that sends ``Authorization: Bearer <token>``.

    Every call takes ``status`` (the expected status; WebTest fails the test otherwise) and returns
    the WebTest response (``.json``, ``.status_int``, ``.headers``)."""

    def __init__(self, app, runtime, token=None):
        self.app = app
        self.runtime = runtime
        self.token = token

    def headers(self, extra=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def get(self, path, params=None, status=200, headers=None):
        return self.app.get(_url(path), params=params, headers=self.headers(headers), status=status)

    def post(self, path, body=None, status=200, headers=None):
        return self.app.post_json(_url(path), body, headers=self.headers(headers), status=status) if body is not None \
            else self.app.post(_url(path), headers=self.headers(headers), status=status)

    def patch(self, path, body, status=200, headers=None):
        return self.app.patch_json(_url(path), body, headers=self.headers(headers), status=status)

    def delete(self, path, status=204, headers=None):
        return self.app.delete(_url(path), headers=self.headers(headers), status=status)

    def raw(self, method, path, body=b"", content_type="application/json", status=None, headers=None):
        """A request with a body sent as given (bytes), for malformed input."""
        return self.app.request(_url(path), method=method, body=body, headers=self.headers(headers),
                                content_type=content_type, status=status, expect_errors=True)

    def as_anonymous(self):
        return Api(self.app, self.runtime)

    def login(self, username, password=PASSWORD, status=200):
        response = self.app.post_json("/api/v1/auth/token", {"username": username, "password": password}, status=status)
        return Api(self.app, self.runtime, response.json["token"]) if status == 200 else response


def _url(path):
    return path if path.startswith("/") else "/api/v1/" + path


def create_user(runtime, username, admin=True, **kwargs):
    with runtime.transaction() as records:
        return auth.create_user(records.session, username, PASSWORD, admin=admin, now=records.now(), **kwargs)


@pytest.fixture
def make_api(make_runtime):
    """``make_api(plugins=(...), enabled="deals", **settings)`` → an :class:`Api` logged in as an
    administrator. By default the core entities and the deals test plugin only (``enabled="*"``:
    every installed plugin too)."""

    def make(plugins=(), username="admin", enabled="deals", **settings):
        runtime = make_runtime(plugins=[deals_plugin(), *plugins], enabled=enabled, **settings)
        create_user(runtime, username)
        client = Api(TestApp(make_app(runtime)), runtime)
        return client.login(username)

    return make


@pytest.fixture
def api(make_api):
    return make_api()
