"""Keys, tenants, throttling and the JSON error body of every refusal (SPEC section 4)."""

import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from integrations import services
from integrations.models import ApiKey, Customer, SyncRun
from tests.support.api import (
    API,
    client_for,
    error_of,
    json_body,
    open_run,
    records,
)


@pytest.fixture
def run_id(api, integration):
    return open_run(api)["id"]


def endpoints(run_id):
    """(method, path, kwargs) of every endpoint that needs a key."""
    return [
        ("get", f"{API}/integrations/", {}),
        ("post", f"{API}/integrations/products/runs/", {"data": {"mode": "full"}, "format": "json"}),
        ("get", f"{API}/integrations/products/runs/", {}),
        (
            "post",
            f"{API}/runs/{run_id}/batches/",
            {"data": json_body(1, records(1)), "content_type": "application/json"},
        ),
        ("post", f"{API}/runs/{run_id}/complete/", {"format": "json"}),
        ("post", f"{API}/runs/{run_id}/cancel/", {}),
        ("get", f"{API}/runs/{run_id}/", {}),
        ("get", f"{API}/runs/{run_id}/errors/", {}),
        ("get", f"{API}/runs/{run_id}/errors/?format=csv", {}),
        ("post", f"{API}/integrations/products/uploads/", {"data": {}, "format": "multipart"}),
    ]


def call(client, method, path, kwargs):
    return getattr(client, method)(path, **kwargs)


def test_no_key_is_401_everywhere(run_id):
    anonymous = client_for(None)
    for method, path, kwargs in endpoints(run_id):
        response = call(anonymous, method, path, kwargs)
        assert response.status_code == 401, (path, response.content)
        assert error_of(response)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert SyncRun.objects.get(pk=run_id).status == "receiving"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Bearer abc.def",
        "Token whatever",
        "Bearer ",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
    ],
)
def test_bad_keys_are_401(run_id, api_key, header):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(f"{API}/runs/{run_id}/")
    assert response.status_code == 401
    assert error_of(response)["code"] in ("authentication_failed", "not_authenticated")


def test_right_prefix_wrong_secret_is_401(run_id, api_key):
    prefix = api_key.split(".")[0]
    response = client_for(f"{prefix}.{'x' * 32}").get(f"{API}/runs/{run_id}/")
    assert response.status_code == 401
    assert error_of(response)["message"] == "invalid API key"


def test_revoked_key_is_401_everywhere(run_id, api_key):
    services.api_key_revoke(prefix=api_key.split(".")[0])
    client = client_for(api_key)
    for method, path, kwargs in endpoints(run_id):
        response = call(client, method, path, kwargs)
        assert response.status_code == 401, (path, response.content)
        assert "revoked" in error_of(response)["message"]


def test_expired_key_is_401(run_id, api_key):
    ApiKey.objects.filter(prefix=api_key.split(".")[0]).update(expiry_date=timezone.now() - timedelta(minutes=1))
    response = client_for(api_key).get(f"{API}/runs/{run_id}/")
    assert response.status_code == 401
    assert "expired" in error_of(response)["message"]


def test_inactive_customer_is_403_everywhere(run_id, api_key, customer):
    Customer.objects.filter(pk=customer.pk).update(is_active=False)
    client = client_for(api_key)
    for method, path, kwargs in endpoints(run_id):
        response = call(client, method, path, kwargs)
        assert response.status_code == 403, (path, response.content)
        assert error_of(response)["code"] == "permission_denied"
    assert SyncRun.objects.get(pk=run_id).status == "receiving"


def test_another_customers_run_and_integration_are_404_everywhere(run_id, other_api):
    own_integrations = other_api.get(f"{API}/integrations/").json()
    assert [i["slug"] for i in own_integrations["results"]] == ["products"]  # its own, not acme's
    for method, path, kwargs in endpoints(run_id):
        if path in (
            f"{API}/integrations/",
            f"{API}/integrations/products/runs/",
            f"{API}/integrations/products/uploads/",
        ):
            continue  # globex has its own `products`: checked below with a slug only acme has
        response = call(other_api, method, path, kwargs)
        assert response.status_code == 404, (path, response.content)
        assert error_of(response)["code"] == "not_found"
    run = SyncRun.objects.get(pk=run_id)
    assert run.status == "receiving" and run.batches.count() == 0


def test_another_customers_integration_is_404_like_a_missing_one(api, integration, other_api, other_customer):
    services.integration_create(customer=integration.customer, slug="acme-only", target="catalog.product")
    for slug in ("acme-only", "does-not-exist"):
        for method, path, kwargs in [
            ("get", f"{API}/integrations/{slug}/runs/", {}),
            ("post", f"{API}/integrations/{slug}/runs/", {"data": {}, "format": "json"}),
            ("post", f"{API}/integrations/{slug}/uploads/", {"data": {}, "format": "multipart"}),
        ]:
            response = call(other_api, method, path, kwargs)
            assert response.status_code == 404, (slug, path)
            assert error_of(response) == {"code": "not_found", "message": f"no integration {slug!r}", "details": {}}
    assert not SyncRun.objects.filter(integration__customer=other_customer).exists()


def test_runs_of_other_customers_are_not_listed(api, integration, other_api):
    open_run(api)
    open_run(other_api)
    mine = api.get(f"{API}/integrations/products/runs/").json()
    assert mine["count"] == 1
    assert mine["results"][0]["id"] == str(SyncRun.objects.get(integration=integration).pk)


def test_unknown_run_id_and_garbage_id_are_404(api, integration):
    for run_id in (uuid.uuid4(), "not-a-uuid"):
        response = api.get(f"{API}/runs/{run_id}/")
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"


def test_last_used_at_is_recorded(api, api_key, integration):
    key = ApiKey.objects.get(prefix=api_key.split(".")[0])
    assert key.last_used_at is None
    assert api.get(f"{API}/integrations/").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_throttled_per_key_with_retry_after(api, integration, other_api):
    with override_settings(INTEGRATIONS_THROTTLE_RATE="3/min"):
        answers = [api.get(f"{API}/integrations/") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        error = error_of(answers[-1])
        assert error["code"] == "throttled"
        retry_after = int(answers[-1]["Retry-After"])
        assert 1 <= retry_after <= 60
        assert error["details"] == {"retry_after": retry_after}
        # another key has its own count
        assert other_api.get(f"{API}/integrations/").status_code == 200


# --- Django- and DRF-level refusals are JSON too ---------------------------------------------


def test_unknown_urls_under_api_are_json_404(api_key):
    api = APIClient(enforce_csrf_checks=True)  # as a real client: Django's CSRF check is on
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    for path in ("/api/v1/nope/", "/api/v1/runs/", "/api/v2/integrations/", "/api/", "/api/v1/integrations"):
        for method in ("get", "post", "delete"):
            response = getattr(api, method)(path)
            assert response.status_code == 404, (method, path)
            assert error_of(response)["code"] == "not_found"


def test_wrong_method_is_json_405(api, run_id):
    for method, path in [
        ("delete", f"{API}/runs/{run_id}/"),
        ("get", f"{API}/runs/{run_id}/batches/"),
        ("put", f"{API}/integrations/"),
        ("get", f"{API}/runs/{run_id}/complete/"),
    ]:
        response = getattr(api, method)(path)
        assert response.status_code == 405, path
        assert error_of(response)["code"] == "method_not_allowed"
        assert "Allow" in response


def test_malformed_json_body_is_json_400(api, integration):
    response = api.generic("POST", f"{API}/integrations/products/runs/", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


def test_unsupported_content_type_is_json_415(api, integration):
    response = api.generic("POST", f"{API}/integrations/products/runs/", b"mode=full", content_type="text/plain")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_html_accept_header_still_gets_json(api, integration):
    response = api.get(f"{API}/integrations/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    response = client_for(None).get(f"{API}/integrations/", HTTP_ACCEPT="text/html")
    assert response.status_code == 401
    error_of(response)
