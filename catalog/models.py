from django.db import models
from django.db.models.functions import Now


class Product(models.Model):
    """The demo sync target (SPEC section 5): one customer's products, keyed by sku."""

    customer = models.ForeignKey("integrations.Customer", on_delete=models.CASCADE, related_name="products")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    quantity = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)
    # database defaults: the engine writes rows with set-based SQL, not through the ORM
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["customer", "sku"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "sku"], name="product_unique_sku_per_customer"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="product_price_not_negative"),
        ]

    def __str__(self):
        return f"{self.sku} {self.name}"
