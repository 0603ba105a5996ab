"""Errors raised by the alerts package."""

from __future__ import annotations


class AlertsError(Exception):
    """Base class for every error of the alerts package."""


class ConfigError(AlertsError):
    """alerts.yml (or an API payload) is invalid; the message names the key."""


class NotFoundError(AlertsError):
    """A rule, channel, silence or alert with that id does not exist."""


class ConflictError(AlertsError):
    """An object with that id already exists, or the change clashes with the configuration."""


class UnsafeTargetError(AlertsError):
    """An outbound URL or SMTP host points into a refused network (SSRF guard)."""


class ResolutionError(AlertsError):
    """A target's host name could not be resolved (possibly temporary: retried)."""


class DeliveryError(AlertsError):
    """A channel could not deliver a notification.

    ``retryable`` is true for network errors and 5xx answers, false for 4xx and bad settings.
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
