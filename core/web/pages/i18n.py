"""Texts of the web UI in Chinese and English: one gettext domain ``crm`` whose catalogs are
``ui/locale/<locale>/LC_MESSAGES/crm.po``.

The ``.po`` files are the only source: they are compiled in memory with Babel when the app
starts, so no compiled ``.mo`` file can lag behind them. Message ids are the English texts;
templates write ``${_('Save')}``, Python code ``_(request, "Save")``; ``${name}`` placeholders
take values by keyword (``_('${n} records', n=3)``).

``python -m crm.core.web.pages.i18n`` adds the ids used in templates and page code that the
catalogs lack (and reports those no longer used); see ``docs/ui.md``.
"""
import io
import re
import sys
from importlib import resources
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from pyramid.i18n import ILocalizer, ITranslationDirectories, TranslationString, Translations, make_localizer
from pyramid.i18n import default_locale_negotiator
from pyramid_chameleon.interfaces import IChameleonTranslate
from translationstring import ChameleonTranslate

DOMAIN = "crm"
LOCALES = ("zh_CN", "en")
LOCALE_NAMES = {"zh_CN": "中文", "en": "English"}
SESSION_LOCALE = "crm.locale"
MESSAGE = re.compile(r"""(?<![\w.])N?_\(\s*(?:request\s*,\s*)?(?P<q>['"])(?P<id>.+?)(?P=q)""")


def includeme(config):
    config.set_locale_negotiator(negotiate_locale)
    # late (after every add_translation_dirs, before pyramid_chameleon's translator at 1000)
    config.action("crm.pages.localizers", register_localizers, args=(config.registry,), order=999)


def negotiate_locale(request):
    """``_LOCALE_`` (request attribute, parameter or cookie), then for pages the language chosen
    in the session, then the user's own locale; None means ``pyramid.default_locale_name``."""
    name = default_locale_negotiator(request)
    if name:
        return name
    path = request.environ.get("PATH_INFO", "")
    if path == "/api/v1" or path.startswith("/api/v1/"):
        return None
    try:
        name = request.session.get(SESSION_LOCALE)
    except Exception:
        name = None
    if name in LOCALES:
        return name
    user = request.identity
    return user.get("locale") if user and user.get("locale") in LOCALES else None


def catalog_path(locale, root=None):
    base = Path(root) if root else Path(str(resources.files("crm.ui")))
    return base / "locale" / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(locale, root=None):
    with open(catalog_path(locale, root), "rb") as f:
        return read_po(f, locale=locale, domain=DOMAIN)


def compiled(locale):
    """The catalog of ``locale`` as Pyramid translations of the ``crm`` domain."""
    buffer = io.BytesIO()
    write_mo(buffer, read_catalog(locale))
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def register_localizers(registry):
    directories = registry.queryUtility(ITranslationDirectories, default=[])
    for locale in LOCALES:
        localizer = make_localizer(locale, directories)
        localizer.translations.add(compiled(locale), merge=True)
        registry.registerUtility(localizer, ILocalizer, name=locale)
    if registry.queryUtility(IChameleonTranslate) is None:  # i18n:translate in templates
        from pyramid_chameleon.localization import translator
        registry.registerUtility(ChameleonTranslate(translator), IChameleonTranslate)


def translate(request, msgid, **mapping):
    return request.localizer.translate(TranslationString(msgid, domain=DOMAIN, mapping=mapping or None))


def translator(request):
    """``_`` for templates: ``_('Save')``, ``_('${n} records', n=3)``."""
    localizer = request.localizer

    def _(msgid, **mapping):
        return localizer.translate(TranslationString(msgid, domain=DOMAIN, mapping=mapping or None))
    return _


# --- catalog maintenance ---------------------------------------------------------------------------

def used_messages(root):
    """Message ids used in the templates (``ui/templates``), the page code (this package) and the
    built-in plugins' pages that use the same catalogs (``plugins/*/templates``, ``plugins/*/*.py``)."""
    root = Path(root)
    files = sorted((root / "ui" / "templates").rglob("*.pt")) + sorted((root / "core" / "web" / "pages").glob("*.py"))
    files += sorted((root / "plugins").glob("*/templates/*.pt")) + sorted((root / "plugins").glob("*/*.py"))
    found = {}
    for path in files:
        for match in MESSAGE.finditer(path.read_text("utf-8")):
            found.setdefault(match.group("id"), str(path.relative_to(root)))
    return found


def check(root):
    """(missing, untranslated, unused) per locale: ids used but absent from the catalog, present
    without translation, present but used nowhere."""
    used = used_messages(root)
    report = {}
    for locale in LOCALES:
        catalog = read_catalog(locale, root / "ui")
        ids = {m.id for m in catalog if m.id}
        report[locale] = (sorted(set(used) - ids), sorted(m.id for m in catalog if m.id and not m.string),
                          sorted(ids - set(used)))
    return report


def update(root):
    """Add the missing ids to every catalog (English: the id itself; Chinese: empty, to translate)
    and remove the ids no longer used."""
    used = used_messages(root)
    for locale in LOCALES:
        path = catalog_path(locale, root / "ui")
        catalog = read_catalog(locale, root / "ui")
        for msgid, where in used.items():
            if msgid not in catalog:
                catalog.add(msgid, msgid if locale == "en" else "", locations=[(where, 0)])
        for message in list(catalog):
            if message.id and message.id not in used:
                catalog.delete(message.id)
        with open(path, "wb") as f:
            write_po(f, catalog, width=120, omit_header=False, no_location=True)


def main(argv=None):
    root = Path(__file__).resolve().parents[3]
    update(root)
    status = 0
    for locale, (missing, untranslated, unused) in check(root).items():
        for msgid in untranslated:
            print(f"{locale}: untranslated: {msgid}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
