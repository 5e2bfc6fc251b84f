from django.contrib import admin

from .models import Category, Contact, Device, OrderLine


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "customer")
    list_filter = ("customer",)
    search_fields = ("code", "name")
    list_select_related = ("customer",)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("external_id", "email", "customer", "category", "signed_up_at", "score")
    list_filter = ("customer",)
    search_fields = ("email",)
    list_select_related = ("customer", "category")


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ("order_no", "line", "sku", "quantity", "unit_price", "customer")
    list_filter = ("customer",)
    search_fields = ("order_no", "sku")
    list_select_related = ("customer",)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("device_id", "label", "customer", "registered_at")
    list_filter = ("customer",)
    list_select_related = ("customer",)
