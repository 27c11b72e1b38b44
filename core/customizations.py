"""Customizations saved from the web designer (table ``crm_customizations``): the last layer of
the effective metadata, after the instance's ``custom/`` folder.

A customization is a metadata document (an extension, a custom entity or a dictionary) stored
under a name. It is checked against everything else before it is stored: a document that would
make the metadata invalid is refused with the same file + pointer problems as a file would get.
"""
import sqlalchemy as sa

from crm.core import registry
from crm.core.errors import ValidationFailed
from crm.core.tables import customizations


def save(runtime, session, name, document, user_id=None, now=None):
    """Store (or replace) customization ``name``; returns the problems-free effective metadata.
    Call ``runtime.reload()`` after the transaction commits and ``crm db upgrade`` (or
    ``runtime.upgrade()``) to create new columns."""
    layers = runtime.layers()
    stored = {row.name: row.document for row in session.execute(sa.select(customizations.c.name, customizations.c.document))}
    stored[name] = document
    custom_dir = runtime.instance_dir / "custom"
    custom = ([custom_dir] if custom_dir.is_dir() else []) + [
        {"__source__": f"customization {key}", **doc} for key, doc in stored.items()]
    layers[-1] = (registry.CUSTOM, custom)
    try:
        model = registry.build(layers)
    except registry.MetadataError as e:
        raise ValidationFailed(f"customization {name!r} makes the metadata invalid",
                               {f"{p.pointer or '/'}": f"{p.source}: {p.message}" for p in e.problems})
    values = dict(document=document, updated_at=now or runtime.clock(), updated_by=user_id)
    if session.execute(sa.select(customizations.c.id).where(customizations.c.name == name)).first():
        session.execute(customizations.update().where(customizations.c.name == name).values(values))
    else:
        session.execute(customizations.insert().values(name=name, **values))
    return model


def remove(session, name):
    session.execute(customizations.delete().where(customizations.c.name == name))


def list_all(session):
    return [dict(r) for r in session.execute(sa.select(customizations).order_by(customizations.c.id)).mappings()]
