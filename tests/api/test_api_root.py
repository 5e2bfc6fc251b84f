"""The API root (SPEC section 4), the demo's landing page, and the API's independence of the host's
REST_FRAMEWORK setting (SPEC section 12)."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.support.api import API, error_of


def test_api_root_maps_the_endpoints_and_the_docs_without_a_key(db, api):
    response = APIClient().get(f"{API}/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    root = "http://testserver/api/v1/"
    assert body["endpoints"]["integrations"] == root + "integrations/"
    assert body["endpoints"]["run_batches"] == root + "runs/{run_id}/batches/"
    assert body["endpoints"]["integration_uploads"] == root + "integrations/{slug}/uploads/"
    assert {body["schema"], body["docs"], body["redoc"]} == {root + "schema/", root + "docs/", root + "redoc/"}
    assert "Bearer" in body["authentication"]
    # the map leads somewhere: the listed endpoint answers with a key, the docs without one
    assert api.get(body["endpoints"]["integrations"]).status_code == 200
    assert APIClient().get(body["docs"]).status_code == 200


def test_landing_page_links_the_admin_the_api_and_the_docs(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for link in ('href="/admin/"', 'href="/api/v1/"', 'href="/api/v1/docs/"'):
        assert link in html


HOSTILE_REST_FRAMEWORK = {
    # what a host may well have for its own API: none of it may leak into ours
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.FormParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 1,
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": "1/day"},
    "DEFAULT_SCHEMA_CLASS": "rest_framework.schemas.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.NamespaceVersioning",
}


@pytest.mark.parametrize("rest_framework", [{}, HOSTILE_REST_FRAMEWORK], ids=["drf-defaults", "hostile"])
def test_the_api_ignores_the_hosts_rest_framework_settings(db, customer, integration, api, rest_framework):
    from integrations import services

    services.integration_create(customer=customer, slug="second", target="catalog.product")
    with override_settings(REST_FRAMEWORK=rest_framework):
        listing = api.get(f"{API}/integrations/", {"page_size": 1})
        assert listing.status_code == 200, listing.content
        assert set(listing.json()) == {"count", "next", "previous", "results"}
        assert listing.json()["count"] == 2
        created = api.post(f"{API}/integrations/second/runs/", {"mode": "incremental"}, format="json")
        assert created.status_code == 201, created.content
        anonymous = APIClient()
        assert error_of(anonymous.get(f"{API}/integrations/"))["code"] == "not_authenticated"
        assert anonymous.get(f"{API}/").status_code == 200
        schema = anonymous.get(f"{API}/schema/?format=json")
        assert schema.status_code == 200, schema.content[:2000]
        assert "/api/v1/runs/{run_id}/batches/" in schema.json()["paths"]
        assert schema.json()["info"]["title"] == "Integrations API"
        docs = anonymous.get(f"{API}/docs/")
        assert docs.status_code == 200
        assert "/static/drf_spectacular_sidecar/" in docs.content.decode()
