"""/api/v1/: the batch API (SPEC section 4), its schema and docs. Anything else under it is a JSON 404."""

from django.urls import path, re_path

from . import schema, views  # schema also registers the auth scheme with drf-spectacular
from .errors import api_not_found

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="api-root"),
    path("integrations/", views.IntegrationListView.as_view(), name="api-integrations"),
    path("integrations/<slug:slug>/runs/", views.IntegrationRunsView.as_view(), name="api-integration-runs"),
    path("integrations/<slug:slug>/uploads/", views.UploadView.as_view(), name="api-integration-uploads"),
    path("runs/<str:run_id>/", views.RunDetailView.as_view(), name="api-run"),
    path("runs/<str:run_id>/batches/", views.BatchView.as_view(), name="api-run-batches"),
    path("runs/<str:run_id>/complete/", views.RunCompleteView.as_view(), name="api-run-complete"),
    path("runs/<str:run_id>/cancel/", views.RunCancelView.as_view(), name="api-run-cancel"),
    path("runs/<str:run_id>/errors/", views.RunErrorsView.as_view(), name="api-run-errors"),
    path("runs/<str:run_id>/changes/", views.RunChangesView.as_view(), name="api-run-changes"),
    path("schema/", schema.SchemaView.as_view(), name="api-schema"),
    path("docs/", schema.DocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", schema.RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    re_path(r"^", api_not_found),
]
