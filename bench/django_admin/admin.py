"""ModelAdmins equivalent to the CRM's customer list: the same columns (``list_columns``), filters
on the same indexed fields, the same quick-search fields, the same default order, 50 per page.

``show_full_result_count = False`` is what a Django developer sets on a big table (it saves the
second COUNT(*) of a filtered changelist); the paginator's own COUNT(*) is Django's behaviour and
stays.
"""
from django.contrib import admin

from bench.django_admin.models import Customer  # generated from the instance's tables


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "category", "region", "industry", "level", "phone", "owner", "last_contact_at")
    list_filter = ("category", "level", "status", "region", "industry", "owner", "department", "last_contact_at", "created_at")
    search_fields = ("name", "code", "mnemonic", "phone")
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False
