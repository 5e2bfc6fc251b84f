"""The operator's endpoints (SPEC section 14). A host project mounts them at its root:

    path("", include("integrations.ops_urls")),

They sit outside /api/: no API key, no throttle, no DRF; /metrics has its own bearer token.
"""

from django.urls import path

from . import health, metrics

urlpatterns = [
    path("healthz", health.healthz, name="integrations-healthz"),
    path("readyz", health.readyz, name="integrations-readyz"),
    path("metrics", metrics.metrics_view, name="integrations-metrics"),
]
