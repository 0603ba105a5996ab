"""Errors raised by the storage engine."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store error."""


class CorruptBlockError(StoreError):
    """A stored block or WAL record cannot be decoded."""


class StoreClosedError(StoreError):
    """The store was used before ``start()`` or after ``close()``."""


class StoreUnavailableError(StoreError):
    """The store cannot write now (disk full, I/O error, database locked): nothing of the
    request was stored; the same request may succeed later."""


class BadCursorError(StoreError, ValueError):
    """A pagination cursor that this store did not issue."""


class InvalidRequestError(StoreError, ValueError):
    """An ingest request the store cannot represent (the server validates before this; the
    store checks again so that nothing of such a request is written)."""


class HeadFullError(StoreError):
    """Storing the request would take the in-memory head over its byte budget (of the host, or
    of the whole store); nothing was stored. The head shrinks when closed windows are written
    to disk (the next maintenance run), so the same request may succeed then."""

    def __init__(self, message: str, *, whole_store: bool) -> None:
        super().__init__(message)
        self.whole_store = whole_store
