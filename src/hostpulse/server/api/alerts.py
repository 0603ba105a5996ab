"""/alerts: rules, channels, silences, active alerts, history, acknowledgement, test sends.

Thin routes over ``hostpulse.alerts.service.AlertService`` (``request.app.state.alerts``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field, WithJsonSchema

from hostpulse.alerts.channels import AnyChannelSpec, ChannelConfig, masked, public
from hostpulse.alerts.exceptions import AlertsError, ConfigError, ConflictError, NotFoundError
from hostpulse.alerts.repository import HistoryQuery
from hostpulse.alerts.rules import silence_active
from hostpulse.alerts.schema import AnyRule, Rule, SilenceSpec
from hostpulse.alerts.service import AlertService, Entry
from hostpulse.alerts.types import AlertInstance, Notification
from hostpulse.server.alert_feed import alert_fields, severity_name
from hostpulse.server.api.crud import Crud, add_crud_routes
from hostpulse.server.auth.deps import EditorDep, method_role
from hostpulse.server.auth.principals import User
from hostpulse.server.auth.roles import Role

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The request cannot be carried out as given."},
    404: {"description": "No rule, channel, silence or alert with that id."},
    409: {"description": "An entry with that id exists already."},
    503: {"description": "Alerts are not running on this server."},
}
# reads need a viewer, writes (rules, channels, silences, acks, test sends) an editor
router = APIRouter(
    prefix="/alerts", tags=["alerts"], responses=_ERRORS, dependencies=[Depends(method_role)]
)


def get_alerts(request: Request) -> AlertService:
    service = getattr(request.app.state, "alerts", None)
    if not isinstance(service, AlertService):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "alerts are not running")
    return service


Alerts = Annotated[AlertService, Depends(get_alerts)]


@dataclass(frozen=True, slots=True)
class Caller:
    """The service and who calls it: what a channel shows, and who creates a silence,
    depend on the signed-in user."""

    alerts: AlertService
    user: User


async def get_caller(alerts: Alerts, user: Annotated[User, Depends(method_role)]) -> Caller:
    return Caller(alerts, user)


def _http_error(exc: AlertsError) -> HTTPException:
    if isinstance(exc, NotFoundError):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, ConflictError):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, ConfigError):
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))


class Stored(BaseModel):
    source: Literal["default", "config", "api"]
    created_ms: int
    updated_ms: int


class RuleOut(Stored):
    rule: Rule


class ChannelOut(Stored):
    channel: dict[str, Any] = Field(
        description="The channel settings. Secrets (passwords, tokens, webhook URLs and header "
        "values) read as '********' for everyone; viewers see no target at all (only id, "
        "name, type, enabled, min_severity, send_resolved)."
    )


class SilenceOut(Stored):
    id: str
    active: bool
    silence: SilenceSpec


class AlertOut(BaseModel):
    id: str
    rule_id: str
    rule_title: str
    host: str
    host_name: str = Field(description="The host's hostname; its id when the host is unknown.")
    labels: dict[str, str]
    state: str
    severity: Literal["warning", "critical"] | None
    value: float | None
    pending_since_ms: int | None
    fired_at_ms: int | None
    acked_by: str | None
    acked_at_ms: int | None
    silenced: bool = Field(description="A silence mutes this alert's notifications now.")
    silence_id: str | None = Field(description="That silence (the one ending last, if several).")
    silenced_until_ms: int | None = Field(description="When that silence's window ends.")


class HistoryOut(BaseModel):
    id: int
    alert_id: str
    rule_id: str
    host: str
    host_name: str = Field(description="The host's hostname; its id when the host is unknown.")
    labels: dict[str, str]
    from_state: str
    to_state: str
    severity: Literal["warning", "critical"] | None
    value: float | None
    at_ms: int


class AckIn(BaseModel):
    by: str = Field(default="anonymous", min_length=1, max_length=255)


class NotificationOut(BaseModel):
    id: int
    channel_id: str
    rule_id: str
    kind: str
    status: Literal["queued", "sent", "failed"]
    attempts: int
    last_error: str | None
    summary: str
    created_ms: int
    updated_ms: int


class TestResult(BaseModel):
    ok: bool
    status: int | None
    error: str | None
    duration_ms: int


def _rule_out(e: Entry[AnyRule]) -> RuleOut:
    return RuleOut(source=e.source, created_ms=e.created_ms, updated_ms=e.updated_ms, rule=e.spec)  # type: ignore[arg-type]


def _channel_out(e: Entry[AnyChannelSpec], user: User) -> ChannelOut:
    data = masked(e.spec) if user.role.allows(Role.editor) else public(e.spec)
    return ChannelOut(
        source=e.source,  # type: ignore[arg-type]
        created_ms=e.created_ms,
        updated_ms=e.updated_ms,
        channel=data,
    )


def _silence_out(e: Entry[SilenceSpec], now_ms: int) -> SilenceOut:
    return SilenceOut(
        id=e.id,
        source=e.source,  # type: ignore[arg-type]
        created_ms=e.created_ms,
        updated_ms=e.updated_ms,
        active=silence_active(e.spec, now_ms),
        silence=e.spec,
    )


def _alert_out(service: AlertService, a: AlertInstance, names: dict[str, str]) -> AlertOut:
    return AlertOut(**alert_fields(service, a, names, service.clock.now_ms()))


# -- rules, channels, silences: list, create, get, replace, delete -------------------------------


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except AlertsError as exc:
        raise _http_error(exc) from None


def _same_id(body_id: str, url_id: str | None) -> None:
    if url_id is not None and body_id != url_id:
        raise HTTPException(422, f"id: the body's id {body_id!r} differs from the URL's")


async def _rule_body(rule: Rule) -> AnyRule:
    return rule


async def _save_rule(alerts: AlertService, rule: AnyRule, rule_id: str | None) -> RuleOut:
    _same_id(rule.id, rule_id)
    return _rule_out(await alerts.save_rule(rule, create=rule_id is None))


add_crud_routes(
    router,
    Crud(
        noun="rule",
        plural="rules",
        out=RuleOut,
        service=get_alerts,
        body=_rule_body,
        errors=_http_errors,
        list_all=lambda alerts: [_rule_out(e) for e in alerts.rules()],
        get=lambda alerts, rule_id: _rule_out(alerts.rule(rule_id)),
        save=_save_rule,
        delete=AlertService.delete_rule,
    ),
)


async def _channel_body(channel: ChannelConfig) -> AnyChannelSpec:
    return channel


async def _save_channel(
    caller: Caller, channel: AnyChannelSpec, channel_id: str | None
) -> ChannelOut:
    _same_id(channel.id, channel_id)
    saved = await caller.alerts.save_channel(channel, create=channel_id is None)
    return _channel_out(saved, caller.user)


async def _delete_channel(caller: Caller, channel_id: str) -> None:
    await caller.alerts.delete_channel(channel_id)


add_crud_routes(
    router,
    Crud(
        noun="channel",
        plural="channels",
        out=ChannelOut,
        service=get_caller,
        body=_channel_body,
        errors=_http_errors,
        list_all=lambda c: [_channel_out(e, c.user) for e in c.alerts.channels()],
        get=lambda c, channel_id: _channel_out(c.alerts.channel(channel_id), c.user),
        save=_save_channel,
        delete=_delete_channel,
    ),
)


@router.post("/channels/{channel_id}/test", response_model=TestResult)
async def test_channel(channel_id: str, alerts: Alerts) -> TestResult:
    """Send one test notification now (no retries) and report how it went."""
    try:
        attempt = await alerts.test_channel(channel_id)
    except AlertsError as exc:
        raise _http_error(exc) from None
    return TestResult(
        ok=attempt.ok, status=attempt.status, error=attempt.error, duration_ms=attempt.duration_ms
    )


async def _silence_body(silence: SilenceSpec) -> SilenceSpec:
    return silence


def _silences(caller: Caller) -> list[SilenceOut]:
    now = caller.alerts.clock.now_ms()
    return [_silence_out(e, now) for e in caller.alerts.silences()]


async def _save_silence(caller: Caller, silence: SilenceSpec, silence_id: str | None) -> SilenceOut:
    """``created_by`` is the signed-in user who created the silence (kept when it is
    replaced); a value in the body is ignored."""
    alerts = caller.alerts
    creator = caller.user.username
    if silence_id is not None:
        creator = alerts.silence(silence_id).spec.created_by or creator
    spec = silence.model_copy(update={"created_by": creator})
    return _silence_out(await alerts.save_silence(spec, silence_id), alerts.clock.now_ms())


async def _delete_silence(caller: Caller, silence_id: str) -> None:
    await caller.alerts.delete_silence(silence_id)


add_crud_routes(
    router,
    Crud(
        noun="silence",
        plural="silences",
        out=SilenceOut,
        service=get_caller,
        body=_silence_body,
        errors=_http_errors,
        list_all=_silences,
        get=lambda c, silence_id: _silence_out(
            c.alerts.silence(silence_id), c.alerts.clock.now_ms()
        ),
        save=_save_silence,
        delete=_delete_silence,
    ),
)


# -- alerts -----------------------------------------------------------------------------------


@router.get("/active", response_model=list[AlertOut])
async def active_alerts(alerts: Alerts) -> list[AlertOut]:
    """Pending and firing alerts, most severe first, with whether a silence mutes each."""
    active = await alerts.current()
    names = await alerts.host_names(a.host for a in active)
    return [_alert_out(alerts, a, names) for a in active]


@router.post("/active/{alert_id}/ack", response_model=AlertOut)
async def acknowledge(
    alert_id: str, alerts: Alerts, user: EditorDep, body: AckIn | None = None
) -> AlertOut:
    """Acknowledge a firing alert: repeats stop, others see who took it (recorded as the
    signed-in user; ``by`` in the body is ignored)."""
    del body
    try:
        inst = await alerts.acknowledge(alert_id, user.username)
    except AlertsError as exc:
        raise _http_error(exc) from None
    return _alert_out(alerts, inst, await alerts.host_names([inst.host]))


@router.get("/notifications", response_model=list[NotificationOut])
async def notifications(
    alerts: Alerts, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[NotificationOut]:
    """Recent notifications per channel with their delivery status, newest first."""
    return [
        NotificationOut(
            id=r["id"],
            channel_id=r["channel_id"],
            rule_id=r["rule_id"],
            kind=r["kind"],
            status=r["status"],
            attempts=r["attempts"],
            last_error=r["last_error"],
            summary=Notification.from_dict(r["payload"]).summary,
            created_ms=r["created_ms"],
            updated_ms=r["updated_ms"],
        )
        for r in await alerts.repo.notifications(limit)
    ]


def _ms(value: datetime | None) -> int | None:
    """Milliseconds since the epoch; a time without a zone is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


_TIME_DOC = "ISO 8601 (2026-11-22T08:00:00Z; without a zone: UTC) or Unix time in seconds"
# documented as the string it is: more spellings are accepted than format=date-time says
_TIME_SCHEMA = WithJsonSchema({"type": "string", "description": _TIME_DOC})


@router.get("/history", response_model=list[HistoryOut])
async def history(
    alerts: Alerts,
    host: str | None = None,
    rule: str | None = None,
    state: Literal["ok", "pending", "firing", "resolved"] | None = None,
    since: Annotated[datetime | None, Query(description=_TIME_DOC), _TIME_SCHEMA] = None,
    until: Annotated[datetime | None, Query(description=_TIME_DOC), _TIME_SCHEMA] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[HistoryOut]:
    """State changes, newest first, filtered by host, rule, new state and time range."""
    since_ms, until_ms = _ms(since), _ms(until)
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise HTTPException(422, "until: must be after 'since'")
    rows = await alerts.history(HistoryQuery(host, rule, state, since_ms, until_ms, limit))
    names = await alerts.host_names(r["host"] for r in rows)
    return [
        HistoryOut(
            id=r["id"],
            alert_id=r["alert_id"],
            rule_id=r["rule_id"],
            host=r["host"],
            host_name=names.get(r["host"], r["host"]),
            labels={k: v for k, v in r["labels"]},
            from_state=r["from_state"],
            to_state=r["to_state"],
            severity=severity_name(r["severity"]),
            value=r["value"],
            at_ms=r["at_ms"],
        )
        for r in rows
    ]
