"""The WSGI application: ``main`` is what ``pserve DIR/crm.ini`` (and ``crm serve``) calls.

Reading ``make_app`` tells you the whole web application: each part registers its own routes
and views in its ``includeme``; plugins add theirs through the ``crm_web_config`` hook.
"""
import zope.sqlalchemy
from pyramid.config import Configurator

from crm.core.runtime import Runtime


def main(global_config, **settings):
    return make_app(Runtime(settings))


def _dbsession(request):
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    return request.registry.crm.session(
        write, before_begin=lambda session: zope.sqlalchemy.register(
            session, transaction_manager=request.tm, initial_state="changed" if write else "active"))


def _records(request):
    return request.registry.crm.records(request.dbsession, user=request.crm_user, locale=request.locale_name)


def make_app(runtime):
    settings = {"tm.manager_hook": "pyramid_tm.explicit_manager", **runtime.settings}
    settings.setdefault("pyramid.default_locale_name", settings.get("crm.default_locale", "zh_CN"))
    with Configurator(settings=settings) as config:
        config.registry.crm = runtime
        config.include("pyramid_tm")
        config.include("pyramid_chameleon")
        config.add_request_method(_dbsession, "dbsession", reify=True)
        config.add_request_method(_records, "records", reify=True)
        config.add_request_method(lambda request: request.identity, "crm_user", reify=True)  # see crm.core.web.security
        config.include("crm.core.web.api")
        config.include("crm.core.web.pages")
        runtime.plugins.hook.crm_web_config(config=config)
    return config.make_wsgi_app()
