"""WSGI applications served by ``bench throughput`` (waitress and gunicorn load them from here).

- ``crm_app()``: the CRM of the instance named by ``CRM_BENCH_INSTANCE``, built as ``pserve`` builds it,
  with the settings of ``CRM_BENCH_SETTINGS`` (a JSON object, ``bench throughput --setting``) on top.
- ``bare_app()``: a bare Pyramid application with two JSON views returning the very documents the
  CRM's list and detail API returned once (saved in ``CRM_BENCH_PAYLOAD``), rendered by Pyramid's
  ``json`` renderer on every request: the floor of Pyramid + the server + JSON for the same bytes.
"""
import json
import os

from pyramid.config import Configurator


def crm_app():
    from crm.core import instance
    from crm.core.app import main
    extra = json.loads(os.environ.get("CRM_BENCH_SETTINGS") or "{}")
    return main({}, **{**instance.settings(os.environ["CRM_BENCH_INSTANCE"]), **extra})


def bare_app():
    with open(os.environ["CRM_BENCH_PAYLOAD"], encoding="utf-8") as f:
        payload = json.load(f)
    with Configurator() as config:
        config.add_route("bare.list", "/bare/list")
        config.add_route("bare.detail", "/bare/detail")
        config.add_view(lambda request: payload["list"], route_name="bare.list", renderer="json")
        config.add_view(lambda request: payload["detail"], route_name="bare.detail", renderer="json")
    return config.make_wsgi_app()
