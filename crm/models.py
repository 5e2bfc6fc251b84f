"""The second demo host app (SPEC section 12): targets of every key shape and kind of field."""

import uuid

from django.db import models
from django.utils import timezone


class Category(models.Model):
    """A string key."""

    customer = models.ForeignKey("integrations.Customer", on_delete=models.CASCADE)
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=100)

    class Meta:
        verbose_name_plural = "categories"
        constraints = [models.UniqueConstraint(fields=["customer", "code"], name="uniq_category")]

    def __str__(self):
        return self.code


class Contact(models.Model):
    """An integer key, dates, a decimal, nullable fields, a reference, a column outside the schema."""

    customer = models.ForeignKey("integrations.Customer", on_delete=models.CASCADE)
    external_id = models.BigIntegerField()
    email = models.EmailField()
    birth_date = models.DateField(null=True)
    signed_up_at = models.DateTimeField()
    score = models.DecimalField(max_digits=6, decimal_places=2, null=True)
    category = models.ForeignKey(Category, null=True, on_delete=models.PROTECT)
    notes = models.TextField(default="")  # not synced: keeps its default, never overwritten

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "external_id"], name="uniq_contact")]

    def __str__(self):
        return f"{self.external_id} {self.email}"


class OrderLine(models.Model):
    """A composite key: order number and line number."""

    customer = models.ForeignKey("integrations.Customer", on_delete=models.CASCADE)
    order_no = models.CharField(max_length=32)
    line = models.PositiveIntegerField()
    sku = models.CharField(max_length=64)
    quantity = models.IntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "order_no", "line"], name="uniq_order_line")]

    def __str__(self):
        return f"{self.order_no}/{self.line}"


class Device(models.Model):
    """A UUID key, and columns outside the schema with callable Python defaults."""

    customer = models.ForeignKey("integrations.Customer", on_delete=models.CASCADE)
    device_id = models.UUIDField()
    label = models.CharField(max_length=100)
    registered_at = models.DateTimeField(default=timezone.now)
    tags = models.JSONField(default=list)
    token = models.UUIDField(default=uuid.uuid4)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "device_id"], name="uniq_device")]

    def __str__(self):
        return str(self.device_id)
