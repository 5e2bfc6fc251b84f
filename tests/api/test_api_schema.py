"""The OpenAPI schema and its docs page, and a schemathesis run against the schema: generated
requests to every operation, with a real key and real runs, find no 5xx and no answer that breaks
the schema (status codes, content types, bodies)."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from integrations import services
from integrations.proto.testing import encode_batch
from tests.support import product, sync
from tests.support.api import API


@schemathesis.serializer("application/x-protobuf")
def _protobuf(ctx, value) -> bytes:
    """Generated protobuf bodies: bytes pass as they are (mostly garbage: a 400); other values
    become a real Batch message so the accepting path is exercised too."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return encode_batch([product("PB-1")], seq=1)


def test_schema_is_openapi_3_and_documents_every_endpoint(client):
    response = client.get(f"{API}/schema/?format=json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    expected = {
        "/api/v1/": {"get"},
        "/api/v1/integrations/": {"get"},
        "/api/v1/integrations/{slug}/runs/": {"get", "post"},
        "/api/v1/integrations/{slug}/uploads/": {"post"},
        "/api/v1/runs/{run_id}/": {"get"},
        "/api/v1/runs/{run_id}/batches/": {"post"},
        "/api/v1/runs/{run_id}/complete/": {"post"},
        "/api/v1/runs/{run_id}/cancel/": {"post"},
        "/api/v1/runs/{run_id}/errors/": {"get"},
        "/api/v1/runs/{run_id}/changes/": {"get"},
    }
    assert {p: set(ops) - {"parameters"} for p, ops in paths.items()} == expected
    batch = paths["/api/v1/runs/{run_id}/batches/"]["post"]
    assert set(batch["requestBody"]["content"]) == {"application/json", "application/x-protobuf"}
    assert batch["requestBody"]["content"]["application/x-protobuf"]["schema"] == {"type": "string", "format": "binary"}
    assert {"200", "202", "400", "401", "403", "404", "409", "413", "415", "429"} <= set(batch["responses"])
    upload = paths["/api/v1/integrations/{slug}/uploads/"]["post"]
    assert "file" in doc["components"]["schemas"]["UploadInput"]["properties"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert doc["components"]["schemas"]["ErrorOutput"]["properties"]["error"]
    assert doc["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert paths["/api/v1/"]["get"].get("security") in (None, [{}])  # the root needs no key
    for path, operations in paths.items():
        if path == "/api/v1/":
            continue
        for method, operation in operations.items():
            assert "401" in operation["responses"], (path, method)
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorOutput"
            }


def test_docs_pages_use_no_cdn(client):
    for page in ("docs", "redoc"):
        response = client.get(f"{API}/{page}/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "/static/drf_spectacular_sidecar/" in html
        assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    assert client.get(f"{API}/schema/").status_code == 200  # YAML by default


# --- schemathesis ------------------------------------------------------------------------------

wsgi_app = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi(f"{API}/schema/?format=json", wsgi_app)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def world(request, api_key, integration):
    """A key; for the errors operation a run with record errors; each example gets a fresh run."""
    errors_run = None
    if "/errors/" in request.node.name:
        integration.max_error_rate = 1.0
        integration.save()
        failed = sync(integration, [product("OK"), product("BAD", price="-1"), {"name": "keyless"}])
        errors_run = str(failed.pk)
    return {"key": api_key, "integration": integration, "errors_run": errors_run}


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, world):
    if "slug" in (case.path_parameters or {}):
        case.path_parameters["slug"] = "products"
    if "run_id" in (case.path_parameters or {}):
        if world["errors_run"]:
            case.path_parameters["run_id"] = world["errors_run"]
        else:
            run, _ = services.run_create(integration=world["integration"])
            case.path_parameters["run_id"] = str(run.pk)
    case.call_and_validate(headers={"Authorization": f"Bearer {world['key']}"}, checks=CHECKS)
