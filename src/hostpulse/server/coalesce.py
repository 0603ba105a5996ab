"""One write for a response's head and body.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send``
syscalls, two TCP segments and two wake-ups of the client for every answer. Under the ingest
and history loads most answers are a few hundred bytes, and the second write was about a tenth
of the server's event loop. ``CoalescingTransport`` sits between uvicorn's protocol and the
socket's transport and holds a head that announces a body (``content-length`` above 0) until
the next write, the end of the response, or the connection's close, then writes both at once.

Nothing else is held: heads without a body (``101 Switching Protocols``, 204, 304,
``content-length: 0``, chunked answers whose length is not known), bodies and everything a
WebSocket sends go straight through. A held head waits for the app's next message only, which
on every route follows at once; a HEAD answer's head is written when the response completes.
"""

from __future__ import annotations

import asyncio
from typing import Any

# Bodies up to this size are joined with their head into one buffer; a larger body is written
# after its head without copying it (the copy would cost more than the syscall it saves).
JOIN_LIMIT = 64 * 1024

_HEAD_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length: "


def _announces_body(data: bytes) -> bool:
    """``data`` is a whole response head (uvicorn writes it in one piece, header names in lower
    case) whose ``content-length`` is above 0."""
    if not data.startswith(b"HTTP/1.1 ") or not data.endswith(_HEAD_END):
        return False
    at = data.find(_LENGTH)
    if at < 0:
        return False
    end = data.find(b"\r\n", at + len(_LENGTH))
    value = data[at + len(_LENGTH) : end].strip()
    return value.isdigit() and int(value) > 0


class CoalescingTransport:
    """``transport`` with response heads held for their body (see the module's docstring);
    every other attribute is the wrapped transport's."""

    __slots__ = ("_held", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= JOIN_LIMIT:
                self._transport.write(held + bytes(data))
                return
            self._transport.write(held)
        elif type(data) is bytes and _announces_body(data):
            self._held = data
            return
        self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self.flush()
        self._transport.writelines(list_of_data)

    def flush(self) -> None:
        """Write a held head now (the response ended without a body write: HEAD)."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        if not self._transport.is_closing():
            self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
