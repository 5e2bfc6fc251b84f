"""Template filters of the integrations admin (no dependency on django.contrib.humanize, which a
host project may not install)."""

from django import template

register = template.Library()


@register.filter
def thousands(value):
    """200000 -> 200,000 (whatever the locale settings); anything else as it is."""
    from ..admin.common import number

    return number(value)
