"""A multipart/form-data body that streams one file from disk, with a Content-Length.

requests builds `files=` bodies in memory; this one reads the file in blocks as the socket takes
them. It declares its length up front because the Django development server (and many proxies)
does not take a chunked request body.
"""

from __future__ import annotations

import os
import uuid
from typing import IO


class MultipartFile:
    def __init__(
        self,
        file: IO[bytes],
        *,
        filename: str,
        fields: dict[str, str] | None = None,
        field_name: str = "file",
        content_type: str = "application/octet-stream",
    ):
        self.boundary = f"----integrations-client-{uuid.uuid4().hex}"
        self._file = file
        self._start = file.tell()
        size = file.seek(0, os.SEEK_END)  # a file of any kind that can seek; not a pipe
        file.seek(self._start)
        self._size = size - self._start
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n{value}\r\n'.encode()
            for name, value in (fields or {}).items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(field_name)}"; '
            f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.rewind()

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": f"multipart/form-data; boundary={self.boundary}", "Content-Length": str(len(self))}

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def rewind(self) -> None:
        """Back to the first byte (before a retry)."""
        self._file.seek(self._start)
        self._parts = [self._head, None, self._tail]  # None: the file itself

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while self._parts and (size < 0 or len(out) < size):
            want = -1 if size < 0 else size - len(out)
            part = self._parts[0]
            if part is None:
                data = self._file.read(want)
                if not data:
                    self._parts.pop(0)
                out += data
                continue
            if want < 0 or len(part) <= want:
                out += part
                self._parts.pop(0)
            else:
                out += part[:want]
                self._parts[0] = part[want:]
        return bytes(out)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
