from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "bench.django_admin"
    label = "crm"
    verbose_name = "CRM"
