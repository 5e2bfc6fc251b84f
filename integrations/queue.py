"""Putting work on the django-q2 queue: always after commit, so a worker never sees uncommitted rows.

`enqueue` hands the task over in `transaction.on_commit`: inside a transaction, when its outermost
block commits (and never if it rolls back); outside one, at once. So a lone `enqueue` needs no
`transaction.atomic()` around it.

With INTEGRATIONS_RUN_TASKS_INLINE (tests) or inside `inline()` (`sync_file --wait`), the task
function is called in this process after commit instead.

The tasks are named by `Task`, the one home of their dotted paths (django-q2 imports a task by its
path, and the services cannot import tasks.py, which imports them). The system check
integrations.E005 (checks.py) says at startup when one of them does not resolve.
"""

import contextlib
import contextvars
from enum import StrEnum

from django.db import transaction
from django.utils.module_loading import import_string

from .conf import conf


class Task(StrEnum):
    """Every task the app puts on the queue or schedules (schedules.py), by its dotted path."""

    KICK_INTEGRATION = "integrations.tasks.kick_integration"
    START_DRY_RUN = "integrations.tasks.start_dry_run"
    PROCESS_RUN = "integrations.tasks.process_run"
    SPLIT_UPLOAD = "integrations.tasks.split_upload"
    VALIDATE_BATCH = "integrations.tasks.validate_batch"
    APPLY_RUN = "integrations.tasks.apply_run"
    CLEANUP_RUN = "integrations.tasks.cleanup_run"
    RUN_FINISHED = "integrations.tasks.run_finished"
    ALERT_CONDITION = "integrations.tasks.alert_condition"
    DELIVER_WEBHOOK = "integrations.tasks.deliver_webhook"
    DELIVER_DUE_WEBHOOKS = "integrations.tasks.deliver_due_webhooks"
    SWEEP = "integrations.tasks.sweep"
    PURGE = "integrations.tasks.purge"


def unresolved_tasks(names=Task) -> list[str]:
    """The task paths among `names` that name no callable (what the system check reports)."""
    bad = []
    for name in names:
        try:
            func = import_string(str(name))
        except ImportError:
            bad.append(str(name))
        else:
            if not callable(func):
                bad.append(str(name))
    return bad


_inline = contextvars.ContextVar("integrations_inline", default=False)
_in_task = contextvars.ContextVar("integrations_in_task", default=False)


@contextlib.contextmanager
def _set(flag: contextvars.ContextVar):
    token = flag.set(True)
    try:
        yield
    finally:
        flag.reset(token)


def inline():
    """Every task enqueued inside runs in this process after commit (`sync_file --wait`, `review_run`)."""
    return _set(_inline)


def in_task():
    """Around the service a worker's task calls (tasks.py): what it enqueues with `follow` runs here."""
    return _set(_in_task)


def enqueue(task: Task, *args, group: str | None = None, cluster: str | None = None, follow: bool = False) -> None:
    """`cluster`: the django-q2 cluster (queue) whose workers run the task; None, the default one.

    `follow`: the next step of a run's chain, due as soon as the current one commits (a started run's
    hand-out, the apply after its last batch's validation). Enqueued inside a worker's task, it runs
    in that worker right after commit instead of going round the broker: each such round trip was
    a poll of the broker and a hand-over between processes, 0.05 to 0.1 s of every run's wait
    (make bench-e2e's timeline). Elsewhere (a web request, the admin) it is enqueued as any task."""
    func = str(task)  # the plain path: django-q2 stores it with the task
    run_inline = _inline.get() or conf.RUN_TASKS_INLINE or (follow and _in_task.get())
    args = tuple(str(a) if not isinstance(a, (int, str)) else a for a in args)

    def send():
        if run_inline:
            import_string(func)(*args)
        else:
            from django_q.tasks import async_task

            options = {"cluster": cluster} if cluster else {}
            async_task(func, *args, group=group or func.rsplit(".", 1)[-1], **options)

    transaction.on_commit(send, robust=False)
