"""Hostile-input probes of issue 10 against the API, the admin and the commands (points 4, 7, 8, 9,
10, 11): each test is named after its point and reproduces the probe that got through before."""

import base64
import ipaddress
import os
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from catalog.models import Product
from integrations import services, webhooks
from integrations.exceptions import InvalidInput
from integrations.models import Integration, SyncBatch, SyncRun
from integrations.proto import batch_pb2
from tests.support import product
from tests.support.api import (
    API,
    PROTOBUF_TYPE,
    client_for,
    error_of,
    json_body,
    open_run,
    post_batch,
    proto_body,
    records,
)


def complete(client, run_id, **body):
    return client.post(f"{API}/runs/{run_id}/complete/", body, format="json")


# --- point 4: a deactivated integration takes no data ------------------------------------------


def test_point4_deactivated_integration_refuses_batches_and_complete(api, integration):
    run_id = open_run(api)["id"]
    assert post_batch(api, run_id, json_body(1, records(2))).status_code == 202
    Integration.objects.filter(pk=integration.pk).update(is_active=False)

    response = post_batch(api, run_id, json_body(2, records(2, start=2)))
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "inactive" and "deactivated" in error["message"]
    response = complete(api, run_id)
    assert response.status_code == 409 and error_of(response)["code"] == "inactive"
    run = SyncRun.objects.get(pk=run_id)
    assert run.status == "receiving" and run.batches.count() == 1
    assert not Product.objects.exists()


def test_point4_queued_run_of_a_deactivated_integration_is_cancelled_not_applied(integration, settings):
    settings.INTEGRATIONS_RUN_TASKS_INLINE = False  # the worker's turn comes later, by hand
    runs = []
    for n in range(2):
        run, _ = services.run_create(integration=integration, mode="incremental")
        services.batch_receive(
            run=run, seq=1, body=json_body(1, [product(f"SKU-{n}")]), content_type="application/json"
        )
        services.run_complete(run=run)
        runs.append(run)
    Integration.objects.filter(pk=integration.pk).update(is_active=False)
    settings.INTEGRATIONS_RUN_TASKS_INLINE = True
    services.integration_kick(integration_id=integration.pk)
    for run in runs:
        run.refresh_from_db()
        assert run.status == "cancelled", run.message
        assert run.message == "not applied: integration acme/products was deactivated"
    assert not Product.objects.exists()


def test_point4_run_processing_when_its_customer_is_deactivated_is_not_applied(customer, integration, settings):
    settings.INTEGRATIONS_EARLY_VALIDATION = False  # the batch waits for the worker below
    run, _ = services.run_create(integration=integration, mode="incremental")
    services.batch_receive(run=run, seq=1, body=json_body(1, [product("A")]), content_type="application/json")
    SyncRun.objects.filter(pk=run.pk).update(status="processing", completed_at=run.created_at, batches_total=1)
    customer.is_active = False
    customer.save()
    services.batch_validate(batch_id=SyncBatch.objects.get(run=run).pk)  # the last batch: the apply follows
    run.refresh_from_db()
    assert run.status == "cancelled" and run.message == "not applied: customer acme was deactivated"
    assert not Product.objects.exists()


# --- point 7: the envelope and the multipart body --------------------------------------------


def test_point7_misspelt_envelope_field_is_400_naming_it(api, integration):
    run_id = open_run(api)["id"]
    body = b'{"seq": 1, "records": [], "delets": ["SKU-1"]}'
    response = post_batch(api, run_id, body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "malformed" and "`delets`" in error["message"]
    assert error["details"] == {"delets": ["Unknown field."]}
    assert not SyncBatch.objects.exists()


def test_point7_envelope_field_given_twice_is_400(api, integration):
    run_id = open_run(api)["id"]
    body = b'{"seq": 1, "records": [{"sku": "A"}], "deletes": ["B"], "records": []}'
    response = post_batch(api, run_id, body)
    assert response.status_code == 400
    assert error_of(response)["details"] == {"records": ["Given more than once."]}
    # a record's own field named like the envelope's is no repeat
    body = json_body(1, [product("A", attributes={"records": 1, "deletes": 2})] * 1)
    assert post_batch(api, run_id, body).status_code == 202


def test_point7_unknown_protobuf_envelope_field_is_400(api, integration):
    run_id = open_run(api)["id"]
    body = proto_body(1, records(1)) + b"\x78\x07"  # field 15 (varint 7): not in the Batch message
    response = post_batch(api, run_id, body, content_type=PROTOBUF_TYPE)
    assert response.status_code == 400
    assert "unknown field number 15" in error_of(response)["message"]
    assert post_batch(api, run_id, proto_body(1, records(1)), content_type=PROTOBUF_TYPE).status_code == 202
    assert 15 not in batch_pb2.Batch.DESCRIPTOR.fields_by_number  # the probe stays an unknown field


def _upload(client, parts):
    """A multipart body written by hand: Django's test client cannot repeat a part's name with files."""
    boundary = "BoUnDaRy"
    lines = []
    for name, value in parts:
        lines.append(f"--{boundary}")
        if isinstance(value, tuple):
            filename, content = value
            lines += [
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"',
                "Content-Type: application/octet-stream",
                "",
                content,
            ]
        else:
            lines += [f'Content-Disposition: form-data; name="{name}"', "", value]
    lines += [f"--{boundary}--", ""]
    return client.generic(
        "POST",
        f"{API}/integrations/products/uploads/",
        "\r\n".join(lines).encode(),
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def test_point7_second_file_part_or_unknown_part_is_400(api, integration):
    first = ("a.json", '[{"sku": "A", "name": "A", "price": "1", "currency": "EUR"}]')
    second = ("b.json", '[{"sku": "B", "name": "B", "price": "1", "currency": "EUR"}]')
    response = _upload(api, [("file", first), ("file", second)])
    assert response.status_code == 400
    assert error_of(response)["details"] == {"file": ["Given more than once."]}
    response = _upload(api, [("file", first), ("mode", "full"), ("mode", "incremental")])
    assert response.status_code == 400 and "mode" in error_of(response)["details"]
    response = _upload(api, [("file", first), ("note", "hello")])
    assert response.status_code == 400 and error_of(response)["details"] == {"note": ["Unknown field."]}
    assert not SyncRun.objects.exists()
    assert _upload(api, [("file", first), ("mode", "incremental")]).status_code == 202


# --- point 8: the Idempotency-Key is unique per customer in the database ----------------------


def test_point8_concurrent_idempotent_creates_make_one_run(api_key, integration):
    n = 8
    barrier = threading.Barrier(n)
    answers = [None] * n

    def create(i):
        try:
            client = client_for(api_key)
            barrier.wait(timeout=30)
            answers[i] = client.post(
                f"{API}/integrations/products/runs/",
                {"mode": "full"},
                format="json",
                HTTP_IDEMPOTENCY_KEY="nightly-2026-12-05",
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * (n - 1) + [201], [a.content[:200] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert SyncRun.objects.count() == 1


def test_point8_key_after_its_window_opens_a_new_run_and_stays_unique(api, integration):
    from datetime import timedelta

    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from integrations.models import IdempotencyKey

    first = api.post(f"{API}/integrations/products/runs/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k").json()
    SyncRun.objects.filter(pk=first["id"]).update(created_at=timezone.now() - timedelta(hours=25))
    again = api.post(f"{API}/integrations/products/runs/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert again.status_code == 201 and again.json()["id"] != first["id"]
    claim = IdempotencyKey.objects.get()
    assert str(claim.run_id) == again.json()["id"]
    with pytest.raises(IntegrityError), transaction.atomic():
        IdempotencyKey.objects.create(customer_id=claim.customer_id, key="k", run_id=first["id"])


# --- point 10: one check of webhook URLs and secrets for every writer --------------------------

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://[2001:0:4136:e378:8000:63bf:5601:5601]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
        "http://10.0.0.1/",
        "ftp://example.com/",
    ],
)
def test_point10_create_integration_refuses_private_webhook_urls(customer, settings, url):
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(CommandError, match="webhook URL"):
        call_command("create_integration", "acme", "feed", "--target", "catalog.product", "--webhook-url", url)
    assert not Integration.objects.filter(slug="feed").exists()


@pytest.mark.parametrize(
    "address, public",
    [
        ("::ffff:169.254.169.254", False),
        ("2002:a9fe:a9fe::", False),
        ("2002:c0a8:0101::1", False),
        ("2001:0:4136:e378:8000:63bf:5601:5601", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("64:ff9b::7f00:1", False),
        ("64:ff9b:1::808:808", False),
        ("::ffff:8.8.8.8", True),
        ("2002:808:808::1", True),
        ("64:ff9b::808:808", True),
    ],
)
def test_point10_ipv6_forms_of_ipv4_addresses(address, public):
    assert webhooks.is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "secret",
    [
        "plain-secret",
        "whsec_",
        "whsec_not base64!",
        "whsec_" + base64.b64encode(b"short").decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
        "whsec_QUJD",
    ],
)
def test_point10_create_integration_refuses_bad_webhook_secrets(customer, secret):
    with pytest.raises(CommandError, match="webhook secret must start with whsec_ followed by the base64"):
        call_command("create_integration", "acme", "feed", "--target", "catalog.product", "--webhook-secret", secret)
    assert not Integration.objects.filter(slug="feed").exists()


def test_point10_command_service_and_admin_share_one_check(customer, admin_client, settings):
    settings.INTEGRATIONS_WEBHOOK_ALLOW_PRIVATE = False
    call_command(
        "create_integration",
        "acme",
        "feed",
        "--target",
        "catalog.product",
        "--webhook-url",
        "https://93.184.215.14/hook",
        "--webhook-secret",
        SECRET,
    )
    assert Integration.objects.get(slug="feed").webhook_secret == SECRET
    with pytest.raises(InvalidInput, match="non-public"):
        services.integration_create(
            customer=customer, slug="other", target="catalog.product", webhook_url="http://[2002:a9fe:a9fe::]/"
        )
    response = admin_client.post(
        "/admin/integrations/integration/add/",
        {
            "customer": customer.pk,
            "slug": "formed",
            "target": "catalog.product",
            "default_mode": "full",
            "is_active": "on",
            "field_map": "{}",
            "adapter": "",
            "max_error_rate": "0",
            "max_deletes_percent": "20",
            "webhook_url": "http://[2002:a9fe:a9fe::]/",
            "webhook_secret": SECRET,
            "contacts": "",
        },
    )
    assert response.status_code == 200 and "non-public address" in response.content.decode()
    assert not Integration.objects.filter(slug="formed").exists()


# --- point 11: requests without a valid key are throttled per client address -----------------


def test_point11_bad_keys_are_throttled_per_address_valid_key_still_works(api_key, integration, settings):
    assert not hasattr(settings, "INTEGRATIONS_ANON_THROTTLE_RATE")  # the default: 60/min
    good = client_for(api_key)
    assert good.get(f"{API}/integrations/").status_code == 200  # a key in use before the flood
    prefix = api_key.split(".")[0]
    guesses = [client_for(f"{prefix}.guess{n:04d}") for n in range(61)]
    answers = [g.get(f"{API}/integrations/") for g in guesses]
    assert [a.status_code for a in answers] == [401] * 60 + [429]
    error = error_of(answers[-1])
    assert error["code"] == "throttled" and 1 <= int(answers[-1]["Retry-After"]) <= 60
    assert error["details"] == {"retry_after": int(answers[-1]["Retry-After"])}
    # no key at all, or the right prefix with another secret: 429 too, before any key is looked at
    assert client_for(None).get(f"{API}/integrations/").status_code == 429
    assert client_for("Basic xyz").get(f"{API}/integrations/").status_code == 429
    # the key in use still works from that address; the guesser's neighbour at another address is not blocked
    assert good.get(f"{API}/integrations/").status_code == 200
    assert good.post(f"{API}/integrations/products/runs/", {}, format="json").status_code == 201
    assert guesses[0].get(f"{API}/integrations/", REMOTE_ADDR="198.51.100.7").status_code == 401
    # X-Forwarded-For is not trusted without REST_FRAMEWORK["NUM_PROXIES"]
    assert guesses[0].get(f"{API}/integrations/", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    # the public pages of the API know no key and no throttle
    assert client_for(None).get(f"{API}/schema/").status_code == 200


def test_point11_ipv6_clients_count_per_64_and_the_rate_is_a_setting(integration, settings):
    settings.INTEGRATIONS_ANON_THROTTLE_RATE = "3/min"
    bad = client_for("nope.nope")
    answers = [bad.get(f"{API}/integrations/", REMOTE_ADDR=f"2001:db8:1:2::{n}").status_code for n in range(1, 5)]
    assert answers == [401, 401, 401, 429]
    assert bad.get(f"{API}/integrations/", REMOTE_ADDR="2001:db8:1:3::1").status_code == 401


# --- point 9: reviewers see no secrets --------------------------------------------------------


def test_point9_reviewer_pages_show_no_webhook_secret_or_key_hash(client, transactional_db):
    from integrations.models import ApiKey
    from tests.support import scenarios
    from tests.support.admin import admin_urls

    world = scenarios.build()
    key, raw = services.api_key_create(customer=world.customer, name="ci")
    world.extra["key"] = key
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    Integration.objects.filter(pk=world.feed.pk).update(webhook_secret=secret)
    # no part of a secret may show: the signing key without its prefix, every key's stored digest
    secrets = {secret.removeprefix("whsec_"), raw.split(".", 1)[1]}
    secrets |= {k.hashed_key.split("$")[-1] for k in ApiKey.objects.all()}
    client.force_login(scenarios.make_reviewer())
    pages = [url for _, url_name, url in admin_urls(world) if not url_name.endswith(("revoke_key", "_delete"))]
    pages += ["/admin/", "/admin/integrations/", "/admin/integrations/apikey/?q=ci", "/admin/integrations/customer/"]
    seen = 0
    for url in pages:
        response = client.get(url, follow=True)
        if response.status_code != 200:
            continue
        seen += 1
        body = b"".join(response.streaming_content) if response.streaming else response.content
        for hidden in secrets:
            assert hidden not in body.decode(), (url, hidden[:12])
    assert seen > 20
    # a reviewer sees that a secret is set; a superuser still edits it
    html = client.get(f"/admin/integrations/integration/{world.feed.pk}/change/").content.decode()
    assert "whsec_" not in html and "set (hidden)" in html
    client.force_login(scenarios.make_superuser())
    html = client.get(f"/admin/integrations/integration/{world.feed.pk}/change/").content.decode()
    assert 'name="webhook_secret"' in html and secret in html
