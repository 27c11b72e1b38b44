"""The WSGI application: ``main`` is what ``pserve DIR/crm.ini`` (and ``crm serve``) calls.

Reading ``make_app`` tells you the whole web application: each part registers its own routes
and views in its ``includeme``; plugins add theirs through the ``crm_web_config`` hook.
"""
import sqlalchemy as sa
import zope.sqlalchemy
import zope.sqlalchemy.datamanager
from pyramid.config import Configurator
from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request
from sqlalchemy.orm import sessionmaker

from crm.core.runtime import Runtime


def main(global_config, **settings):
    return make_app(Runtime(settings))


def _dbsession(request):
    """The request's session, joined to its transaction (pyramid_tm) as ``zope.sqlalchemy.register``
    would join it, but "changed" from the start for reading requests too: their transaction ends
    with COMMIT when they succeed (ROLLBACK on an error, as any request's). Nothing was written,
    so COMMIT and ROLLBACK do the same in the database, but psycopg forgets the statements it
    prepared on the connection at every ROLLBACK: on PostgreSQL, reading requests would never
    reuse a plan. (Being changed from the start, a session needs none of zope.sqlalchemy's
    listeners that mark it changed after a flush or an UPDATE.)"""
    write = request.method not in ("GET", "HEAD", "OPTIONS")
    sessions = request.registry.crm_request_sessions
    return request.registry.crm.session(write, maker=lambda: sessions(info={TM_KEY: request.tm}))


TM_KEY = "crm.transaction_manager"  # session.info of request sessions


class RequestSessionEvents:
    """zope.sqlalchemy's listeners, registered once on the sessionmaker of request sessions instead of
    on every session as ``zope.sqlalchemy.register`` does; each session names its transaction
    manager in ``session.info``."""

    def after_begin(self, session, transaction, connection):
        zope.sqlalchemy.datamanager.join_transaction(session, zope.sqlalchemy.datamanager.STATUS_CHANGED, session.info[TM_KEY])

    def after_attach(self, session, instance):
        zope.sqlalchemy.datamanager.join_transaction(session, zope.sqlalchemy.datamanager.STATUS_CHANGED, session.info[TM_KEY])

    def before_commit(self, session):
        assert session.in_nested_transaction() or session.info[TM_KEY].get().status == zope.sqlalchemy.datamanager.ZopeStatus.COMMITTING, \
            "Transaction must be committed using the transaction manager"


def request_sessionmaker(runtime):
    maker = sessionmaker(bind=runtime.engine)
    events = RequestSessionEvents()
    for name in ("after_begin", "after_attach", "before_commit"):
        sa.event.listen(maker, name, getattr(events, name))
    return maker


def _records(request):
    return request.registry.crm.records(request.dbsession, user=request.crm_user, locale=request.locale_name)


def make_app(runtime):
    settings = {"tm.manager_hook": "pyramid_tm.explicit_manager", **runtime.settings}
    settings.setdefault("pyramid.default_locale_name", settings.get("crm.default_locale", "zh_CN"))
    with Configurator(settings=settings) as config:
        config.registry.crm = runtime
        config.registry.crm_request_sessions = request_sessionmaker(runtime)
        config.include("pyramid_tm")
        config.include("crm.core.web.turns")
        config.include("pyramid_chameleon")
        config.add_request_method(_dbsession, "dbsession", reify=True)
        config.add_request_method(_records, "records", reify=True)
        config.add_request_method(lambda request: request.identity, "crm_user", reify=True)  # see crm.core.web.security
        config.include("crm.core.web.api")
        config.include("crm.core.web.pages")
        runtime.plugins.hook.crm_web_config(config=config)
        config.commit()
        request_class_once(config.registry)
    return config.make_wsgi_app()


def request_class_once(registry):
    """Put the request properties added by ``add_request_method`` (``dbsession``, ``records``,
    pyramid_tm's ``tm`` ...) on one request class made here. Pyramid otherwise makes a new
    subclass of the request's class for every request to carry them (``apply_request_extensions``:
    20 µs, a twentieth of an API detail request). Requests are then made by that class (the
    registry's request factory, also used by ``pyramid.scripting``), with nothing left to apply."""
    extensions = registry.queryUtility(IRequestExtensions)
    if extensions is None or not extensions.descriptors:
        return
    base = registry.queryUtility(IRequestFactory, default=Request)
    registry.registerUtility(type(base.__name__, (base,), {"__module__": base.__module__, **extensions.descriptors}),
                             IRequestFactory)
    extensions.descriptors = {}
