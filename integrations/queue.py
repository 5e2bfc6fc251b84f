"""Putting work on the django-q2 queue: always after commit, so a worker never sees uncommitted rows.

With INTEGRATIONS_RUN_TASKS_INLINE (tests) or inside `inline()` (`sync_file --wait`), the task
function is called in this process after commit instead.
"""

import contextlib
import contextvars

from django.db import transaction
from django.utils.module_loading import import_string

from .conf import conf

_inline = contextvars.ContextVar("integrations_inline", default=False)


@contextlib.contextmanager
def inline():
    token = _inline.set(True)
    try:
        yield
    finally:
        _inline.reset(token)


def enqueue(func: str, *args, group: str | None = None, cluster: str | None = None) -> None:
    """`cluster`: the django-q2 cluster (queue) whose workers run the task; None, the default one."""
    run_inline = _inline.get() or conf.RUN_TASKS_INLINE
    args = tuple(str(a) if not isinstance(a, (int, str)) else a for a in args)

    def send():
        if run_inline:
            import_string(func)(*args)
        else:
            from django_q.tasks import async_task

            options = {"cluster": cluster} if cluster else {}
            async_task(func, *args, group=group or func.rsplit(".", 1)[-1], **options)

    transaction.on_commit(send, robust=False)
