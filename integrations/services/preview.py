"""The "sync a file" flow of SPEC rule 10: a file is uploaded as a dry run (`upload_create` with
`dry_run=True`), its counts and errors are the preview, and the same file then runs for real from
the copy the preview stored. The admin's "Sync a file" page is the one caller today; these take no
request and no form, so a command or an API endpoint could offer the same flow."""

import uuid

from .. import storage
from ..exceptions import NotFound, PayloadGone
from ..models import Integration, SyncRun
from .runs import upload_create


def preview_get(*, integration: Integration, run_id) -> SyncRun:
    """The dry run `run_id` previewing a file for `integration`; NotFound for anything else (not a
    run id, another integration's run, a run that is not a dry run)."""
    try:
        uuid.UUID(str(run_id))
    except ValueError:
        raise NotFound("no such preview") from None
    run = (
        SyncRun.objects.select_related("integration__customer")
        .filter(pk=run_id, integration=integration, dry_run=True)
        .first()
    )
    if run is None:
        raise NotFound("no such preview")
    return run


def preview_run(*, preview: SyncRun, source: str = SyncRun.Source.ADMIN) -> SyncRun:
    """Run the previewed file for real, with the preview's mode and format: a new run with its own
    copy of the file, read back from the preview's stored upload (the preview keeps its copy).
    PayloadGone when the preview stored no file or retention has purged it: upload it again."""
    if not preview.upload_name:
        raise PayloadGone("this preview has no stored file; upload it again")
    try:
        with storage.open_payload(preview.upload_name) as stream:
            return upload_create(
                integration=preview.integration,
                stream=stream,
                filename=preview.upload_filename,
                fmt=preview.upload_format,
                mode=preview.mode,
                dry_run=False,
                source=source,
            )
    except FileNotFoundError:
        raise PayloadGone("the previewed file has expired from storage; upload it again") from None
