"""Email over SMTP: STARTTLS, implicit TLS or plain; optional auth; HTML and plain-text parts.

The SMTP host is checked by the SSRF guard and the connection goes to the checked address,
while TLS verifies the certificate against the configured host name.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any, Literal

from pydantic import Field, field_validator

from hostpulse.alerts import render
from hostpulse.alerts.channels.base import ChannelSpec
from hostpulse.alerts.clock import Clock
from hostpulse.alerts.exceptions import DeliveryError, ResolutionError, UnsafeTargetError
from hostpulse.alerts.net import TargetGuard
from hostpulse.alerts.types import Notification


class EmailSpec(ChannelSpec):
    secret_fields = ("password",)
    target_fields = ("host", "port", "security", "verify_tls", "ca_file")

    type: Literal["email"] = "email"
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str = ""
    sender: str = Field(min_length=3, pattern=r".+@.+")
    to: tuple[str, ...] = Field(min_length=1)
    timeout: float = Field(default=15.0, gt=0, le=120)
    verify_tls: bool = True
    ca_file: str = ""
    """PEM file of the CA that signed the server's certificate (internal CAs)."""

    @field_validator("sender", "to")
    @classmethod
    def _addresses(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        """``ops@example.com`` or ``Ops <ops@example.com>``, on one line: checked when saved,
        not found out at the first alert (a line break was an internal error at every send)."""
        for text in (value,) if isinstance(value, str) else value:
            address = parseaddr(text)[1]
            stripped = text.strip()
            if (
                not text.isprintable()
                or not _ADDRESS.fullmatch(address)
                or not (stripped == address or stripped.endswith(f"<{address}>"))
            ):
                raise ValueError(f"{text!r} is not an email address like ops@example.com")
        return value


_ADDRESS = re.compile(r"[^\s@<>]+@[^\s@<>]+")


class _PinnedSMTP(smtplib.SMTP):
    """SMTP that connects to a pre-checked address but keeps the host name for TLS."""

    pinned: str = ""
    _host: str

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(self.pinned, port, timeout)  # type: ignore[misc,no-any-return]


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    pinned: str = ""
    _host: str

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(self.pinned, port, timeout)  # type: ignore[misc,no-any-return]


def build_message(spec: EmailSpec, n: Notification, now_ms: int) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = n.summary
    msg["From"] = spec.sender
    msg["To"] = ", ".join(spec.to)
    msg["Date"] = formatdate(now_ms / 1000, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=parseaddr(spec.sender)[1].rsplit("@", 1)[-1])
    msg.set_content(render.email_text(n, now_ms))
    msg.add_alternative(render.email_html(n, now_ms), subtype="html")
    return msg


class EmailChannel:
    def __init__(self, spec: EmailSpec, guard: TargetGuard, clock: Clock) -> None:
        self.spec = spec
        self._guard = guard
        self._clock = clock

    async def send(self, notification: Notification) -> None:
        try:
            address = await self._guard.check_host(self.spec.host, self.spec.port)
        except UnsafeTargetError as exc:
            raise DeliveryError(f"email: {exc}", retryable=False) from None
        except ResolutionError as exc:
            raise DeliveryError(f"email: {exc}", retryable=True) from None
        message = build_message(self.spec, notification, self._clock.now_ms())
        await asyncio.to_thread(self._deliver, str(address), message)

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.spec.ca_file or None)
        if not self.spec.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _deliver(self, address: str, message: EmailMessage) -> None:
        spec = self.spec
        client: smtplib.SMTP
        try:
            if spec.security == "tls":
                ssl_client = _PinnedSMTPSSL(
                    local_hostname="hostpulse", timeout=spec.timeout, context=self._context()
                )
                ssl_client.pinned, ssl_client._host = address, spec.host
                client = ssl_client
            else:
                plain = _PinnedSMTP(local_hostname="hostpulse", timeout=spec.timeout)
                plain.pinned, plain._host = address, spec.host
                client = plain
            with client:
                client.connect(spec.host, spec.port)
                client.ehlo()
                if spec.security == "starttls":
                    client.starttls(context=self._context())
                    client.ehlo()
                if spec.username:
                    client.login(spec.username, spec.password)
                refused: dict[str, Any] = client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryError(
                f"email: SMTP {exc.smtp_code} {exc.smtp_error!r}",
                retryable=not permanent,
                status=exc.smtp_code,
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"email: TLS certificate: {exc}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"email: {type(exc).__name__}: {exc}", retryable=True) from None
        if refused:
            raise DeliveryError(f"email: recipients refused: {sorted(refused)}", retryable=False)
