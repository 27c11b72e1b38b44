"""Django admin over the tables of a generated benchmark instance, for ``python -m bench lists``.

Django is only in the ``bench`` extra and only imported here. The models are generated at run time
from the instance's SQLAlchemy tables (``managed = False``: Django never changes them, so both
sides read the same rows through the same indexes); the admin's own tables (users, sessions) live
in a throw-away SQLite file. :func:`start` configures Django and returns a test ``Client`` logged
in as a superuser.
"""
import secrets

from bench.django_admin import schema


def start(runtime, workdir):
    """Configure Django for ``runtime``'s database, create the admin's tables in ``workdir``,
    and return a ``django.test.Client`` logged in as a superuser."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    schema.RUNTIME = runtime
    settings.configure(
        DEBUG=False, SECRET_KEY=secrets.token_urlsafe(32), ALLOWED_HOSTS=["testserver"],
        USE_TZ=False, TIME_ZONE="Asia/Shanghai", LANGUAGE_CODE="zh-hans", USE_I18N=True,
        INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                        "django.contrib.sessions", "django.contrib.messages", "bench.django_admin.apps.CrmConfig"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware", "django.middleware.common.CommonMiddleware",
                    "django.middleware.csrf.CsrfViewMiddleware", "django.contrib.auth.middleware.AuthenticationMiddleware",
                    "django.contrib.messages.middleware.MessageMiddleware"],
        ROOT_URLCONF="bench.django_admin.urls",
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                       "django.contrib.auth.context_processors.auth",
                                                       "django.contrib.messages.context_processors.messages"]}}],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(workdir / "django-admin.sqlite")},
                   "crm": schema.database_settings(runtime.engine.url)},
        DATABASE_ROUTERS=["bench.django_admin.schema.CrmRouter"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    call_command("migrate", database="default", verbosity=0, interactive=False)
    from django.contrib.auth.models import User
    from django.test import Client
    user = User.objects.create_superuser("bench", "bench@example.cn", secrets.token_urlsafe(12))
    client = Client()
    client.force_login(user)
    return client
