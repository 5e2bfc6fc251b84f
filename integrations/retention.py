"""Retention (SPEC section 6): filled in by the reporting issue."""


def purge_sync_data(*, dry_run: bool = False) -> dict:
    return {}
