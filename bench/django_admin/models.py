"""The models, generated from the CRM instance's tables (see :mod:`bench.django_admin.schema`)."""
from bench.django_admin.schema import build_models

globals().update(build_models())
