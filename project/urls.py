from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import TemplateView

from integrations.api.errors import api_not_found

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),  # links to the admin and the API
    path("", include("integrations.ops_urls")),  # /healthz, /readyz, /metrics (SPEC section 14)
    path("admin/", admin.site.urls),
    path("api/v1/", include("integrations.api.urls")),
    re_path(r"^api/", api_not_found),  # any other /api/ URL: a JSON 404
]

# Under /api/, Django-level failures answer the API's JSON error body; elsewhere Django's pages.
handler400 = "integrations.api.errors.bad_request"
handler404 = "integrations.api.errors.page_not_found"
handler500 = "integrations.api.errors.server_error"
