from django.contrib import admin

from .models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "customer", "price", "currency", "quantity", "active", "updated_at")
    list_filter = ("customer", "active", "currency")
    search_fields = ("sku", "name")
    list_select_related = ("customer",)
