"""The development e-mail backend: messages are printed to standard error, so that commands
whose standard output is a contract (`sync_file` prints the run id) stay clean."""

import sys

from django.core.mail.backends.console import EmailBackend as ConsoleBackend


class StderrEmailBackend(ConsoleBackend):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("stream", sys.stderr)
        super().__init__(*args, **kwargs)
