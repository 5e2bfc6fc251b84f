"""`Client.sync` encodes batch k+1 while batch k is posted (issue 14), and changes nothing else:
batches are posted in seq order from one thread, progress comes in order in the caller's thread,
at most two encoded batches are alive, and a failure (a refused batch, the records raising, a
Ctrl-C) cancels the run, raises the original error and leaves no thread behind."""

import threading
import time
import weakref

import pytest
from integrations_client import RetryPolicy, ServerError, ValidationError
from integrations_client import encoding as client_encoding

from integrations.models import SyncBatch, SyncRun
from tests.support.client import products

SENDER = "integrations-client-sender"


def senders():
    return [t for t in threading.enumerate() if t.name.startswith(SENDER)]


def batch_log(proxy):
    return [(outcome, status) for method, path, outcome, status in proxy.log if path.endswith("/batches/")]


def watch_posts(client, before=None):
    """Wrap the client's post_batch: (seq, thread name) of every post, and every error it raised."""
    posts, errors = [], []
    post = client.post_batch

    def watched(run_id, batch, **kwargs):
        posts.append((batch.seq, threading.current_thread().name))
        if before:
            before(batch)
        try:
            return post(run_id, batch, **kwargs)
        except BaseException as exc:
            errors.append(exc)
            raise

    client.post_batch = watched
    return posts, errors


def test_batches_are_posted_in_order_while_the_next_one_is_encoded(api):
    client = api.new_client()
    read = []
    second_batch_read = threading.Event()

    def records():
        for i, record in enumerate(products(450)):
            read.append(i)
            if i == 150:
                second_batch_read.set()
            yield record

    overlapped = []

    def before(batch):
        if batch.seq == 1:  # batch 2 (records 100-199) is read and encoded meanwhile
            overlapped.append(second_batch_read.wait(10))

    posts, _ = watch_posts(client, before)
    progress = []
    report = client.sync(
        "products",
        records(),
        batch_size=100,
        progress=lambda answer, sent: progress.append(
            (answer["seq"], answer["received"], sent, threading.current_thread().name)
        ),
    )

    assert report.status == "succeeded" and report.counts["created"] == 450
    assert overlapped == [True]
    assert [seq for seq, _ in posts] == [1, 2, 3, 4, 5]
    assert {name for _, name in posts} == {SENDER}
    main = threading.current_thread().name
    assert progress == [
        (1, 100, 100, main),
        (2, 100, 200, main),
        (3, 100, 300, main),
        (4, 100, 400, main),
        (5, 50, 450, main),
    ]
    run = SyncRun.objects.get(pk=report.run_id)
    assert list(SyncBatch.objects.filter(run=run).order_by("seq").values_list("seq", "received")) == [
        (1, 100),
        (2, 100),
        (3, 100),
        (4, 100),
        (5, 50),
    ]
    assert senders() == []


def test_an_empty_input_still_sends_one_empty_batch(api):
    progress = []
    report = api.client.sync("products", iter(()), progress=lambda answer, sent: progress.append((answer["seq"], sent)))
    assert report.status == "succeeded" and progress == [(1, 0)]
    assert senders() == []


def test_at_most_two_encoded_batches_are_alive(api, monkeypatch):
    alive, most = [0], [0]
    lock = threading.Lock()
    finish = client_encoding.BatchEncoder.finish

    def gone():
        with lock:
            alive[0] -= 1

    def counted(self, seq, deletes=()):
        batch = finish(self, seq, deletes)
        with lock:
            alive[0] += 1
            most[0] = max(most[0], alive[0])
        weakref.finalize(batch, gone)
        return batch

    monkeypatch.setattr(client_encoding.BatchEncoder, "finish", counted)
    client = api.new_client()
    watch_posts(client, before=lambda batch: time.sleep(0.05))  # slow posts: the encoder runs ahead
    report = client.sync("products", products(1000), batch_size=50)
    assert report.status == "succeeded" and report.counts["created"] == 1000
    assert most[0] == 2  # one posted while the next waits: overlapped, and bounded
    assert senders() == []


@pytest.mark.parametrize("status,error", [(400, ValidationError), (500, ServerError)])
def test_a_batch_refused_in_the_middle_cancels_the_run_and_raises_that_error(api, proxy, status, error):
    for n in (2, 3, 4):  # seq 2: refused (a 500 three times: its retries are used up too)
        proxy.fault("POST", "/batches/", n, status)
    client = api.new_client(proxy.url, retry=RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02))
    _, errors = watch_posts(client)
    progress = []

    with pytest.raises(error) as caught:
        client.sync("products", products(1000), batch_size=100, progress=lambda answer, sent: progress.append(sent))

    assert caught.value is errors[0]  # the very error of the post, not a wrapper
    assert caught.value.status == status and caught.value.message == f"injected {status}"
    assert progress == [100]  # batch 1 was answered; nothing after the refused batch 2
    tries = 1 if status == 400 else 3
    assert batch_log(proxy) == [("ok", 202), *[(status, None)] * tries]  # nothing posted after it
    assert SyncRun.objects.get(integration=api.integration).status == "cancelled"
    assert senders() == []


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_the_records_raising_midway_cancel_the_run_and_stop_the_sender(api, exc_type):
    client = api.new_client()

    def records():
        yield from products(250)
        raise exc_type("the source broke")

    with pytest.raises(exc_type, match="the source broke"):
        client.sync("products", records(), batch_size=100)
    assert SyncRun.objects.get(integration=api.integration).status == "cancelled"
    assert senders() == []


def test_a_failure_of_the_records_cuts_a_retry_wait_short(api, proxy):
    proxy.fault("POST", "/batches/", 1, 503, headers={"Retry-After": "30"})  # batch 1 would wait 30 s
    client = api.new_client(proxy.url)
    retrying = threading.Event()

    def records():
        yield from products(100)
        assert retrying.wait(10)  # batch 1 has been refused: the sender sleeps before its retry
        time.sleep(0.2)
        raise RuntimeError("the source broke")

    def before(batch):
        if batch.seq == 1:
            threading.Timer(0.3, retrying.set).start()

    watch_posts(client, before)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the source broke"):
        client.sync("products", records(), batch_size=100)
    assert time.monotonic() - started < 10
    assert batch_log(proxy) == [(503, None)]  # no retry after the stop
    assert SyncRun.objects.get(integration=api.integration).status == "cancelled"
    assert senders() == []


def test_an_error_of_the_progress_callback_cancels_the_run(api):
    def progress(answer, sent):
        if answer["seq"] == 2:
            raise ValueError("display broke")

    with pytest.raises(ValueError, match="display broke"):
        api.client.sync("products", products(500), batch_size=100, progress=progress)
    assert SyncRun.objects.get(integration=api.integration).status == "cancelled"
    assert senders() == []
