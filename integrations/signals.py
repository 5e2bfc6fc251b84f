"""Signals for the host project (SPEC 2): rows are written set-based, so a model's save() and its
signals do not run; `run_finished` is the hook for follow-up work instead.

    from django.dispatch import receiver
    from integrations.signals import run_finished

    @receiver(run_finished)
    def on_run_finished(sender, run, **kwargs):   # sender: the SyncRun class
        if run.status in ("succeeded", "partial") and run.integration.target == "crm.contact":
            ...

Sent after the commit that puts a run in an end state (succeeded, partial, failed, cancelled,
or needs_review; again when a held run is then approved or rejected), once per such commit.
A receiver that raises is logged and does not disturb the run or the other receivers.
"""

from django.dispatch import Signal

run_finished = Signal()
