"""The run state machine in one place (issue 11): the state sets and predicates on SyncRun agree with
the transitions of services/transitions.py, only that module changes a run's status, a transition
saves only the fields it sets, and every task the app enqueues is named by queue.Task and resolves."""

import ast
import json
from pathlib import Path

import pytest
from django.core import checks
from django.db import transaction
from django.utils import timezone

from integrations import queue, services
from integrations.exceptions import Conflict
from integrations.management.commands.sync_file import EXIT
from integrations.models import SyncRun
from integrations.queue import Task
from integrations.services import transitions
from tests.support import product, sync

S = SyncRun.Status
APP = Path(__file__).resolve().parents[2] / "integrations"


def sources():
    for path in sorted(APP.rglob("*.py")):
        if "migrations" not in path.parts and not path.name.endswith("_pb2.py"):
            yield path, ast.parse(path.read_text(), str(path))


# --- the state sets and predicates -----------------------------------------------------------------

# status: can_cancel, can_retry, is_settled, is_active, is_live (what the admin, the API and the
# services decide from)
PREDICATES = {
    S.RECEIVING: (True, False, False, True, False),
    S.QUEUED: (True, False, False, True, True),
    S.PROCESSING: (True, False, False, True, True),
    S.NEEDS_REVIEW: (True, False, True, False, False),
    S.SUCCEEDED: (False, False, True, False, False),
    S.PARTIAL: (False, False, True, False, False),
    S.FAILED: (False, True, True, False, False),
    S.CANCELLED: (False, True, True, False, False),
}


@pytest.mark.parametrize("status", S.values)
def test_the_predicates_of_each_status(status):
    run = SyncRun(status=status)
    assert (run.can_cancel, run.can_retry, run.is_settled, run.is_active, run.is_live) == PREDICATES[status]
    assert run.is_held is (status == S.NEEDS_REVIEW)
    assert SyncRun(status=status, dry_run=True).is_held is False


def test_the_state_sets_agree_with_the_transitions():
    table = transitions.TRANSITIONS
    every = set(S.values)
    assert set(table) | set(SyncRun.END_STATES) == every and not set(table) & set(SyncRun.END_STATES)
    assert all(set(targets) <= every for targets in table.values())
    # a run can be cancelled exactly while it can become cancelled
    assert set(SyncRun.UNFINISHED_STATES) == set(table) == {s for s, to in table.items() if S.CANCELLED in to}
    assert set(SyncRun.APPLIED_STATES) | set(SyncRun.NOT_APPLIED_STATES) == set(SyncRun.END_STATES)
    assert not set(SyncRun.APPLIED_STATES) & set(SyncRun.NOT_APPLIED_STATES)
    assert set(SyncRun.SETTLED_STATES) == {*SyncRun.END_STATES, S.NEEDS_REVIEW}
    assert set(SyncRun.ACTIVE_STATES) == set(SyncRun.UNFINISHED_STATES) - {S.NEEDS_REVIEW}
    assert set(SyncRun.EARLY_STATES) == set(SyncRun.ACTIVE_STATES) - {S.PROCESSING}
    assert set(SyncRun.LIVE_STATES) <= set(SyncRun.ACTIVE_STATES)
    assert set(SyncRun.BLOCKING_STATES) <= set(SyncRun.UNFINISHED_STATES)
    # every settled run ends `sync_file --wait` with an exit status, and only those
    assert set(EXIT) == set(SyncRun.SETTLED_STATES)


def test_only_the_transitions_module_sets_a_status():
    setters = set()
    for path, tree in sources():
        for node in ast.walk(tree):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, (ast.AugAssign, ast.AnnAssign))
                else []
            )
            if any(isinstance(t, ast.Attribute) and t.attr == "status" for t in targets):
                setters.add(path.relative_to(APP).as_posix())
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "update"
                and any(k.arg == "status" for k in node.keywords)
            ):
                setters.add(path.relative_to(APP).as_posix())
    assert setters == {"services/transitions.py", "webhooks.py"}  # webhooks.py: a delivery's own status


def test_no_module_of_the_services_imports_a_private_name_of_another():
    for path, tree in sources():
        if "services" not in path.parts:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"


# --- the transitions -------------------------------------------------------------------------------


def test_a_transition_saves_only_the_fields_it_sets(integration):
    run = SyncRun.objects.create(
        integration=integration, mode="incremental", status=S.PROCESSING, completed_at=timezone.now(), received=3
    )
    stale = SyncRun.objects.get(pk=run.pk)
    # written meanwhile by another process (a task error): a whole-row save would put it back
    SyncRun.objects.filter(pk=run.pk).update(last_error="seen elsewhere", attempts=2)
    with transaction.atomic():
        transitions.fail(stale, "gave up", detail="for staff")
    run.refresh_from_db()
    assert (run.status, run.message, run.error_detail) == (S.FAILED, "gave up", "for staff")
    assert (run.last_error, run.attempts, run.received) == ("seen elsewhere", 2, 3)
    assert run.finished_at is not None


def test_a_transition_the_table_does_not_allow_is_refused(integration):
    done = sync(integration, [product("P1")])
    assert done.status == S.SUCCEEDED
    with pytest.raises(Conflict, match="only a run not yet applied can be cancelled"):
        transitions.cancel(done, "late")
    with pytest.raises(Conflict, match="not held for review"):
        transitions.reject(done)
    with pytest.raises(Conflict, match="cannot become queued"):
        transitions.queue(done, batches_total=0, received=0)
    receiving, _ = services.run_create(integration=integration)
    with pytest.raises(Conflict, match="cannot become processing"):
        transitions.start(receiving)
    assert not transitions.can_become(receiving, S.FAILED) and transitions.can_become(receiving, S.QUEUED)
    done.refresh_from_db()
    receiving.refresh_from_db()
    assert (done.status, receiving.status) == (S.SUCCEEDED, S.RECEIVING)


def test_run_complete_saves_the_integrity_check_with_the_queueing(integration):
    run, _ = services.run_create(integration=integration, dry_run=True)
    body = json.dumps({"records": [product("A")]}).encode()
    services.batch_receive(run=run, seq=1, body=body, content_type="application/json")
    services.run_complete(run=run, expected_batches=1, expected_records=1)
    run.refresh_from_db()
    assert (run.expected_batches, run.expected_records, run.batches_total, run.received) == (1, 1, 1, 1)
    assert run.completed_at is not None and run.status == S.SUCCEEDED


# --- task references -------------------------------------------------------------------------------


def test_every_task_resolves_to_a_function_of_the_tasks_module():
    assert queue.unresolved_tasks() == []
    for task in Task:
        assert task.value.startswith("integrations.tasks.")
    assert not [e for e in checks.run_checks() if e.id == "integrations.E005"]


def test_a_task_that_does_not_resolve_is_reported(monkeypatch):
    assert queue.unresolved_tasks(
        ["integrations.tasks.no_such_task", "integrations.checks.REQUIRED_APPS", "no_such_module.task", Task.APPLY_RUN]
    ) == ["integrations.tasks.no_such_task", "integrations.checks.REQUIRED_APPS", "no_such_module.task"]
    monkeypatch.setattr(queue, "unresolved_tasks", lambda: ["integrations.tasks.gone"])
    errors = [e for e in checks.run_checks() if e.id == "integrations.E005"]
    assert len(errors) == 1 and "integrations.tasks.gone" in errors[0].msg


def test_tasks_are_named_by_the_task_enum_only():
    """No dotted task path outside queue.py, and every enqueue names a Task member."""
    literals, calls = [], []
    for path, tree in sources():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("integrations.tasks.")
                and path.name != "queue.py"
            ):
                literals.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "enqueue":
                names = [n for n in ast.walk(node.args[0]) if isinstance(n, ast.Attribute)]
                if not names or not all(
                    isinstance(n.value, ast.Name) and n.value.id == "Task" and n.attr in Task.__members__ for n in names
                ):
                    calls.append(f"{path.name}:{node.lineno}")
    assert literals == [] and calls == []
