"""The plugin host: finds plugins, orders them by their dependencies, loads them into one
pluggy ``PluginManager``.

A plugin is a module (or any object) with ``@hookimpl`` functions, registered under the
entry-point group ``crm.plugins``. It may declare ``requires = ["other_plugin", ...]`` and a
translatable ``label``. Built-in plugins register through ``setup.cfg`` the same way.
"""
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata

import pluggy

from crm.hooks import PROJECT, specs
from crm.core.errors import ConfigurationError

ENTRY_POINT_GROUP = "crm.plugins"


@dataclass
class PluginInfo:
    name: str
    module: object
    version: str = ""
    requires: tuple = ()
    label: object = None
    enabled: bool = True
    contributes: dict = field(default_factory=dict)


def discover():
    """Every installed plugin, enabled or not, keyed by name."""
    found = {}
    for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        version = ep.dist.version if ep.dist else ""
        found[ep.name] = _info(ep.name, module, version)
    return found


def _info(name, module, version=""):
    return PluginInfo(
        name=name,
        module=module,
        version=version or getattr(module, "__version__", ""),
        requires=tuple(getattr(module, "requires", ())),
        label=getattr(module, "label", None),
    )


def parse_plugin_setting(value):
    """``crm.plugins`` in crm.ini: ``*`` (every installed plugin) or names separated by blanks."""
    names = (value or "*").replace(",", " ").split()
    return None if names == ["*"] else names


def dependency_order(plugins):
    """Plugins sorted so that each comes after what it requires (stable by name otherwise)."""
    ordered, state = [], {}

    def visit(name, chain):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise ConfigurationError("plugin dependency cycle: " + " -> ".join(chain + [name]))
        state[name] = "visiting"
        for dep in plugins[name].requires:
            if dep not in plugins:
                raise ConfigurationError(f"plugin {name!r} requires {dep!r}, which is not installed or not enabled")
            visit(dep, chain + [name])
        state[name] = "done"
        ordered.append(plugins[name])

    for name in sorted(plugins):
        visit(name, [])
    return ordered


class PluginHost:
    """The single PluginManager plus what we know about each plugin, in dependency order."""

    def __init__(self, enabled=None, disabled=(), extra=()):
        """``enabled``: names to load (None = all installed); ``disabled``: names never loaded;
        ``extra``: (name, object) pairs registered besides the installed ones (tests, embedding)."""
        self.installed = discover()
        for name, obj in extra:
            self.installed[name] = _info(name, obj)
        wanted = set(self.installed) if enabled is None else set(enabled) | {n for n, _ in extra}
        unknown = wanted - set(self.installed)
        if unknown:
            raise ConfigurationError("crm.plugins names unknown plugins: " + ", ".join(sorted(unknown)))
        wanted -= set(disabled)
        for name, info in self.installed.items():
            info.enabled = name in wanted
        self.ordered = dependency_order({n: i for n, i in self.installed.items() if i.enabled})
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(specs)
        for info in self.ordered:
            self.pm.register(info.module, name=info.name)

    @property
    def hook(self):
        return self.pm.hook

    def call_each(self, hook_name, **kwargs):
        """Call a registration hook plugin by plugin in dependency order: [(plugin name, result)]."""
        impls = {impl.plugin_name: impl for impl in getattr(self.pm.hook, hook_name).get_hookimpls()}
        results = []
        for info in self.ordered:
            impl = impls.get(info.name)
            if impl is not None:
                result = impl.function(**{k: kwargs[k] for k in impl.argnames})
                if result is not None:
                    results.append((info.name, result))
        return results


def describe(runtime):
    """Rows for ``crm plugins list``: name, version, state, label and what each contributes."""
    from crm.core.registry import text_in
    contributed = {}
    for doc in runtime.metadata.documents:
        if doc.owner in runtime.plugins.installed:
            kind = {"name": "entities", "extends": "extends", "dictionary": "dictionaries", "workflow": "workflows"}[doc.kind]
            contributed.setdefault(doc.owner, {}).setdefault(kind, []).append(doc.data[doc.kind])
    for entity in runtime.metadata.entities.values():
        for item in entity.fields.values():
            if item.owner in runtime.plugins.installed and item.owner != entity.owner:
                contributed.setdefault(item.owner, {}).setdefault("fields", []).append(f"{entity.name}.{item.name}")
    for hook_name, kind in (("crm_jobs", "jobs"), ("crm_menu_entries", "menu")):
        for name, items in runtime.plugins.call_each(hook_name):
            contributed.setdefault(name, {})[kind] = [getattr(i, "name", None) or i.get("id", "?") for i in items]
    for name, items in runtime.plugins.call_each("crm_roles"):   # new roles, and "+sales_rep" for additions
        contributed.setdefault(name, {})["roles"] = [i.get("name") or "+" + str(i.get("extends")) for i in items]
    for impl in runtime.plugins.hook.crm_web_config.get_hookimpls():
        contributed.setdefault(impl.plugin_name, {})["routes"] = ["(web views)"]
    rows = []
    for name, info in sorted(runtime.plugins.installed.items()):
        rows.append({"name": name, "version": info.version or "-", "state": "enabled" if info.enabled else "disabled",
                     "label": text_in(info.label) if info.label else "", "requires": list(info.requires),
                     "contributes": contributed.get(name, {}) if info.enabled else {}})
    return rows
