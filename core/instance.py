"""The instance folder: one deployment for one company (contract section 3).

    DIR/crm.ini     Pyramid settings (sqlalchemy.url, crm.plugins, secrets)
    DIR/custom/     the implementer's JSON customizations
    DIR/files/      uploaded attachments
"""
import secrets
from pathlib import Path

from pyramid.paster import get_appsettings

from crm.core.errors import ConfigurationError

INI = "crm.ini"
INI_TEMPLATE = """\
# Settings of this CRM instance. Keep it in git without the secret (or override it by environment).
[app:main]
use = egg:crm-framework
crm.instance_dir = %(here)s
# CRM_DATABASE_URL in the environment overrides this, e.g.
# postgresql+psycopg://crm@127.0.0.1:5432/crm
sqlalchemy.url = sqlite:///%(here)s/crm.sqlite
# plugins to load: * for every installed plugin, or names separated by blanks
crm.plugins = *
crm.plugins.disabled =
crm.default_locale = zh_CN
crm.secret = {secret}
pyramid.default_locale_name = zh_CN
# on SQLite a request waits up to this long for the one before it (docs/operations.md); 0: off
# crm.request_turn_wait_ms = 50

[server:main]
use = egg:waitress#main
listen = 127.0.0.1:6543
threads = 8

[loggers]
keys = root, crm

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_crm]
level = INFO
handlers =
qualname = crm

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
"""

CUSTOM_README = """\
Customizations of this instance: JSON metadata documents merged over the core and the plugins.
An extension adds fields (named x_...), list columns, layout sections:

    {"extends": "customer", "fields": {"x_wechat": {"type": "text", "label": {"zh_CN": "微信", "en": "WeChat"}}}}

Run `crm db upgrade DIR` after a change. See docs/metadata.md.
"""


def init(directory, database_url=None):
    """Create the instance folder (an existing crm.ini is kept)."""
    directory = Path(directory).resolve()
    (directory / "custom").mkdir(parents=True, exist_ok=True)
    (directory / "files").mkdir(exist_ok=True)
    readme = directory / "custom" / "README.txt"
    if not readme.exists():
        readme.write_text(CUSTOM_README, "utf-8")
    ini = directory / INI
    if not ini.exists():
        text = INI_TEMPLATE.replace("{secret}", secrets.token_urlsafe(32))
        if database_url:
            text = text.replace("sqlalchemy.url = sqlite:///%(here)s/crm.sqlite", f"sqlalchemy.url = {database_url}")
        ini.write_text(text, "utf-8")
    return directory


def ini_path(directory):
    path = Path(directory).resolve() / INI
    if not path.is_file():
        raise ConfigurationError(f"{path} not found: create the instance with `crm init {directory}`")
    return path


def settings(directory):
    path = ini_path(directory)
    values = dict(get_appsettings(str(path), name="main"))
    values.setdefault("crm.instance_dir", str(path.parent))
    return values
