"""The public plugin API of the CRM.

A plugin needs nothing else from the ``crm`` package::

    from crm.hooks import hookimpl, Veto

    @hookimpl
    def crm_before_create(ctx, entity, values):
        if entity.name == "customer" and not values.get("phone"):
            raise Veto("客户必须有电话")

The hook specifications, one function each with its documentation, are in :mod:`crm.hooks.specs`;
``docs/plugins.md`` is the same reference with examples.
"""
import pluggy

PROJECT = "crm"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Veto(Exception):
    """Raise from a ``crm_before_*`` / ``crm_after_*`` hook to refuse the operation.

    The whole operation (and everything other hooks did in it) is rolled back and the caller gets
    the message: a 422 with ``code = "vetoed"`` over HTTP, a one-line error on the command line.
    ``field`` names the field the message belongs to, when there is one.
    """

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


class Job:
    """A scheduled job a plugin contributes through ``crm_jobs``.

    ``run(ctx)`` receives a :class:`crm.core.records.RecordService` acting as the system in the
    job's own transaction (``ctx.create/update/list``, ``ctx.today()``, ``ctx.now()`` from the
    instance clock, ``ctx.setting(name)``); it must be idempotent for one day: ``crm jobs run`` may
    be called several times. Its return value (a dict, list, number or text) is kept and printed.
    """

    def __init__(self, name, run, label=None, schedule="daily"):
        self.name = name
        self.run = run
        self.label = label or name
        self.schedule = schedule

    def __repr__(self):
        return f"Job({self.name!r})"


__all__ = ["hookimpl", "hookspec", "Veto", "Job", "PROJECT"]
