"""Smuggling another customer's run id (or integration) past tenant scoping: headers, path
tricks, other spellings of the id, query parameters, keys. Every attempt is a JSON 4xx (404 for
another's run, never revealing it exists), the other tenant's run and rows stay as they were."""

import http.client
import json

import pytest

from integrations.models import SyncBatch, SyncRun
from tests.support import product
from tests.support.api import API, JSON_TYPE, client_for, json_body, post_batch
from tests.support.hostile import refused

SMUGGLING_HEADERS = [
    "HTTP_X_RUN_ID",
    "HTTP_X_ORIGINAL_URL",
    "HTTP_X_REWRITE_URL",
    "HTTP_X_FORWARDED_PATH",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_X_FORWARDED_URI",
    "HTTP_X_CUSTOMER",
    "HTTP_X_TENANT",
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_REAL_IP",
    "HTTP_X_HTTP_METHOD_OVERRIDE",
]


def smuggled(theirs: str) -> dict:
    values = {
        "HTTP_X_ORIGINAL_URL": f"{API}/runs/{theirs}/batches/",
        "HTTP_X_REWRITE_URL": f"{API}/runs/{theirs}/",
        "HTTP_X_FORWARDED_PATH": f"{API}/runs/{theirs}/",
        "HTTP_X_FORWARDED_PREFIX": f"{API}/runs/{theirs}",
        "HTTP_X_FORWARDED_URI": f"{API}/runs/{theirs}/",
        "HTTP_X_CUSTOMER": "globex",
        "HTTP_X_TENANT": "globex",
        "HTTP_FORWARDED": "for=127.0.0.1;host=globex.example",
        "HTTP_X_FORWARDED_FOR": "127.0.0.1",
        "HTTP_X_REAL_IP": "127.0.0.1",
        "HTTP_X_HTTP_METHOD_OVERRIDE": "DELETE",
    }
    return {h: values.get(h, theirs) for h in SMUGGLING_HEADERS} | {"HTTP_X_FORWARDED_HOST": "testserver"}


def their_state(tables):
    run = SyncRun.objects.get(pk=tables.theirs)
    return run.status, run.received, tables.batches(tables.theirs)


def test_headers_never_redirect_a_request_to_another_tenants_run(api, tables):
    before = their_state(tables)
    headers = smuggled(tables.theirs)
    # on my own run: my run gets the batch, theirs nothing
    response = post_batch(api, tables.mine, json_body(1, [product("MINE")]), **headers)
    assert response.status_code == 202
    assert tables.batches(tables.mine) == 1
    mine = api.get(f"{API}/runs/{tables.mine}/", **headers).json()
    assert mine["id"] == tables.mine
    # on theirs: 404, whatever the headers say
    for method, url in (
        ("GET", "runs/{}/"),
        ("POST", "runs/{}/batches/"),
        ("POST", "runs/{}/complete/"),
        ("POST", "runs/{}/cancel/"),
        ("GET", "runs/{}/errors/"),
        ("GET", "runs/{}/errors/?format=csv"),
    ):
        response = api.generic(
            method,
            f"{API}/{url.format(tables.theirs)}",
            json_body(1, [product("X")]),
            content_type=JSON_TYPE,
            **headers,
        )
        assert refused(response, 404, "not_found")["message"] == "no such run"
    assert their_state(tables) == before
    tables.assert_unchanged()


@pytest.mark.parametrize(
    "form",
    [
        "{}",
        "{{{}}}",
        "urn:uuid:{}",
        "{upper}",
        "{hex}",
        " {}",
        "{}%00",
        "{}%20",
        "{};",
        "{}%2F",
        "{}%2F..%2F{mine}",
    ],
)
def test_other_spellings_of_their_run_id_are_404(api, tables, form):
    theirs, mine = tables.theirs, tables.mine
    text = form.format(theirs, upper=theirs.upper(), hex=theirs.replace("-", ""), mine=mine)
    for url in (f"{API}/runs/{text}/", f"{API}/runs/{text}/batches/"):
        response = api.generic(
            "POST" if url.endswith("batches/") else "GET", url, json_body(1, [product("X")]), content_type=JSON_TYPE
        )
        refused(response, 404, "not_found")
    assert tables.batches(theirs) == 0
    tables.assert_unchanged()


@pytest.mark.parametrize(
    "path",
    [
        "runs/{mine}/../{theirs}/",
        "runs/{mine}/../{theirs}/batches/",
        "runs/./{theirs}/",
        "runs/{mine}/%2e%2e/{theirs}/",
        "runs//{theirs}/",
        "runs/{theirs}",
        "../v1/runs/{theirs}/",
        "runs/{mine}/batches/../../{theirs}/batches/",
        "integrations/../runs/{theirs}/",
        "runs/{theirs}/batches/?run_id={mine}",
    ],
)
def test_path_tricks_never_reach_their_run(api, tables, path):
    url = f"{API}/{path.format(mine=tables.mine, theirs=tables.theirs)}"
    for method in ("GET", "POST"):
        response = api.generic(method, url, json_body(1, [product("X")]), content_type=JSON_TYPE)
        assert response.status_code in (404, 405), (url, response.status_code)
        refused(response, response.status_code)
    assert tables.batches(tables.theirs) == 0
    tables.assert_unchanged()


def test_query_parameters_do_not_widen_lists(api, tables):
    for query in ("?customer=globex", f"?run={tables.theirs}", "?integration__customer=2", "?all=1", "?page_size=1000"):
        response = api.get(f"{API}/integrations/products/runs/{query}")
        if response.status_code == 200:
            assert [r["id"] for r in response.json()["results"]] == [tables.mine], query
        else:
            refused(response, 400)
        response = api.get(f"{API}/runs/{tables.mine}/errors/{query}")
        assert response.status_code in (200, 400)
    listed = api.get(f"{API}/integrations/?customer=globex")
    if listed.status_code == 200:
        assert listed.json()["count"] == 1
    else:
        refused(listed, 400)  # unknown query parameters are refused, not ignored


def test_bad_keys_and_a_key_in_the_query_string(api_key, other_api, tables):
    from integrations.models import ApiKey

    their_prefix = ApiKey.objects.get(name="other").prefix
    mine_secret = api_key.partition(".")[2]
    for header in (
        f"Bearer {their_prefix}.{mine_secret}",
        f"Bearer {api_key}, Bearer {their_prefix}.x",
        f"Bearer {api_key} {their_prefix}",
        f"Basic {api_key}",
        f"Bearer {their_prefix}",
    ):
        client = client_for(None)
        response = client.get(f"{API}/runs/{tables.theirs}/", HTTP_AUTHORIZATION=header)
        refused(response, 401)
    response = client_for(None).get(f"{API}/runs/{tables.theirs}/?api_key={api_key}&key={api_key}")
    refused(response, 401)
    tables.assert_unchanged()


def test_an_idempotency_key_of_another_customer_opens_a_run_of_ones_own(api, other_api, tables):
    theirs = other_api.post(
        f"{API}/integrations/products/runs/", {"mode": "full"}, format="json", HTTP_IDEMPOTENCY_KEY="shared-key"
    ).json()
    mine = api.post(
        f"{API}/integrations/products/runs/", {"mode": "full"}, format="json", HTTP_IDEMPOTENCY_KEY="shared-key"
    )
    assert mine.status_code == 201 and mine.json()["id"] != theirs["id"]
    other = api.post(
        f"{API}/integrations/products/runs/", {"mode": "incremental"}, format="json", HTTP_IDEMPOTENCY_KEY="shared-key"
    )
    refused(other, 422)
    assert theirs["id"] not in json.dumps(other.json())  # the 422 names my run, never theirs
    tables.assert_unchanged()


def test_a_foreign_host_header_is_a_json_400(api, tables):
    for host in ("evil.example", "testserver.evil.example", "testserver:80@evil.example"):
        response = post_batch(api, tables.mine, json_body(1, [product("X")]), HTTP_HOST=host)
        refused(response, 400, "bad_request")
    assert tables.batches(tables.mine) == 0
    tables.assert_unchanged()


def test_raw_paths_over_a_real_socket(live_server, api_key, tables):
    """The WSGI server sees the path as sent (http.client normalises nothing): dot segments and
    encoded slashes still never reach another tenant's run."""
    host = live_server.url.removeprefix("http://")
    paths = [
        f"{API}/runs/{tables.mine}/../{tables.theirs}/batches/",
        f"{API}/runs/{tables.mine}/%2e%2e/{tables.theirs}/batches/",
        f"{API}/runs/{tables.theirs}%2Fbatches/",
        f"{API}/runs/{tables.theirs}/batches/",
    ]
    for path in paths:
        conn = http.client.HTTPConnection(host, timeout=10)
        conn.request(
            "POST",
            path,
            body=json_body(1, [product("X")]),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": JSON_TYPE,
                "X-Run-Id": tables.theirs,
                "X-Original-URL": path,
            },
        )
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 404 and set(body) == {"error"}, (path, response.status, body)
        conn.close()
    assert not SyncBatch.objects.filter(run_id=tables.theirs).exists()
    tables.assert_unchanged()
