"""Every channel against a real receiver on loopback; retries and failure isolation."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email
import email.policy
import hashlib
import hmac
import re
import threading
from typing import Any
from urllib.parse import parse_qs

from alert_receivers import LOOPBACK_ALLOW, HttpReceiver, SmtpServer

from hostpulse.alerts.channels import build_channel, channel_from_dict
from hostpulse.alerts.clock import ManualClock
from hostpulse.alerts.dispatch import Attempt, Dispatcher, Job, RetryPolicy
from hostpulse.alerts.net import SafeHttp, TargetGuard
from hostpulse.alerts.schema import Severity
from hostpulse.alerts.types import AlertView, Kind, Notification, State

CLOCK = ManualClock(1_763_800_000_000)


def notification(kind: Kind = Kind.FIRING, hosts: int = 1) -> Notification:
    state = State.RESOLVED if kind is Kind.RESOLVED else State.FIRING
    views = tuple(
        AlertView(
            id=f"a{i}",
            rule_id="cpu_high",
            host=f"web-{i}",
            labels=(),
            state=state,
            severity=Severity.CRITICAL,
            value=97.5,
            started_at_ms=CLOCK.now_ms() - 60_000,
            resolved_at_ms=CLOCK.now_ms() if state is State.RESOLVED else None,
        )
        for i in range(hosts)
    )
    return Notification(
        kind=kind,
        rule_id="cpu_high",
        rule_title="CPU usage high",
        severity=Severity.CRITICAL,
        alerts=views,
        created_ms=CLOCK.now_ms(),
        description="CPU busy above 90 % for 2 minutes",
        metric="cpu_busy_percent",
    )


class Log:
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.finished: list[tuple[int | None, bool, str | None]] = []
        self.writes = 0

    async def record_attempt(self, attempt: Attempt) -> None:
        self.writes += 1
        self.attempts.append(attempt)

    async def finish(self, notification_id: int | None, ok: bool, error: str | None) -> None:
        self.writes += 1
        self.finished.append((notification_id, ok, error))

    async def record_last(self, attempt: Attempt, ok: bool, error: str | None) -> None:
        self.writes += 1
        self.attempts.append(attempt)
        self.finished.append((attempt.notification_id, ok, error))


def deliver(spec: dict[str, Any], n: Notification, retry: RetryPolicy | None = None) -> Log:
    async def main() -> Log:
        http = SafeHttp(TargetGuard(LOOPBACK_ALLOW), timeout=5)
        log = Log()
        dispatcher = Dispatcher(CLOCK, log, retry or RetryPolicy(initial_s=0.02, max_s=0.1))
        channel = build_channel(channel_from_dict(spec), http, CLOCK)
        dispatcher.set_channels({channel.spec.id: channel})
        dispatcher.submit(Job(1, channel.spec.id, n))
        await dispatcher.join()
        await dispatcher.close()
        await http.aclose()
        return log

    return asyncio.run(main())


def test_slack_gets_documented_incoming_webhook_payload(http_receiver: HttpReceiver) -> None:
    log = deliver({"id": "s", "type": "slack", "url": http_receiver.url + "/hook"}, notification())
    (req,) = http_receiver.wait_for(1)
    body = req.json()
    assert req.path == "/hook" and req.headers["content-type"] == "application/json"
    assert body["text"] == "[CRITICAL] CPU usage high on web-0"
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[CRITICAL] CPU usage high on web-0"},
    }
    assert body["blocks"][1]["text"]["type"] == "mrkdwn"
    assert "web-0: firing critical, value 97.5" in body["blocks"][1]["text"]["text"]
    assert [(a.ok, a.attempt) for a in log.attempts] == [(True, 1)]
    assert log.finished == [(1, True, None)] and log.writes == 1


def test_discord_gets_content_and_embed(http_receiver: HttpReceiver) -> None:
    deliver({"id": "d", "type": "discord", "url": http_receiver.url}, notification(Kind.RESOLVED))
    body = http_receiver.wait_for(1)[0].json()
    # markdown characters are escaped: Discord shows "[RESOLVED] CPU usage high on web-0"
    assert body["content"] == r"\[RESOLVED\] CPU usage high on web-0"
    (embed,) = body["embeds"]
    assert embed["title"] == body["content"]
    assert embed["color"] == 0x2E7D32
    assert embed["fields"][0]["name"] == "web-0"
    assert embed["timestamp"].endswith("Z")
    assert embed["description"] == "CPU busy above 90 % for 2 minutes"


def test_webhook_json_with_verifiable_hmac_signature(http_receiver: HttpReceiver) -> None:
    spec = {"id": "w", "type": "webhook", "url": http_receiver.url, "secret": "k3y"}
    deliver(spec, notification(hosts=3))
    req = http_receiver.wait_for(1)[0]
    ts = req.headers["x-hostpulse-timestamp"]
    expected = hmac.new(b"k3y", ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-hostpulse-signature"] == "sha256=" + expected
    body = req.json()
    assert body["status"] == "critical" and body["kind"] == "firing"
    assert [a["host"] for a in body["alerts"]] == ["web-0", "web-1", "web-2"]
    assert body["alerts"][0]["value"] == 97.5


def test_sms_uses_twilio_messages_api_shape(http_receiver: HttpReceiver) -> None:
    spec = {
        "id": "sms",
        "type": "sms",
        "base_url": http_receiver.url,
        "account_sid": "AC123",
        "auth_token": "tok",
        "from_number": "+15005550006",
        "to": ["+821012345678", "+15551234567"],
    }
    deliver(spec, notification())
    reqs = http_receiver.wait_for(2)
    assert {r.path for r in reqs} == {"/2010-04-01/Accounts/AC123/Messages.json"}
    assert reqs[0].headers["content-type"] == "application/x-www-form-urlencoded"
    auth = base64.b64decode(reqs[0].headers["authorization"].split()[1]).decode()
    assert auth == "AC123:tok"
    forms = [parse_qs(r.body.decode()) for r in reqs]
    assert [f["To"][0] for f in forms] == ["+821012345678", "+15551234567"]
    assert forms[0]["From"] == ["+15005550006"]
    assert forms[0]["Body"] == ["[CRITICAL] CPU usage high on web-0"]


def test_email_over_starttls_with_auth_has_html_and_text_parts(smtp_server: SmtpServer) -> None:
    spec = {
        "id": "mail",
        "type": "email",
        "host": "127.0.0.1",
        "port": smtp_server.port,
        "security": "starttls",
        "username": "alerts",
        "password": "s3cret",
        "sender": "hostpulse@example.org",
        "to": ["ops@example.org"],
        "ca_file": smtp_server.ca_file,
    }
    log = deliver(spec, notification(hosts=2))
    assert [a.ok for a in log.attempts] == [True], log.attempts
    (envelope,) = smtp_server.box.wait_for(1)
    assert envelope.rcpt_tos == ["ops@example.org"]
    assert isinstance(envelope.content, bytes)
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"] == "[CRITICAL] CPU usage high on web-0, web-1"
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in msg.iter_parts()}  # type: ignore[attr-defined]
    assert "- web-1: firing critical, value 97.5" in parts["text/plain"]
    assert "<td>web-1</td>" in parts["text/html"]


def test_email_over_implicit_tls(smtps_server: SmtpServer) -> None:
    spec = {
        "id": "mail",
        "type": "email",
        "host": "127.0.0.1",
        "port": smtps_server.port,
        "security": "tls",
        "sender": "hostpulse@example.org",
        "to": ["a@example.org", "b@example.org"],
        "ca_file": smtps_server.ca_file,
    }
    log = deliver(spec, notification(Kind.RESOLVED))
    assert [a.ok for a in log.attempts] == [True], log.attempts
    (envelope,) = smtps_server.box.wait_for(1)
    assert envelope.rcpt_tos == ["a@example.org", "b@example.org"]
    assert isinstance(envelope.content, bytes)
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"] == "[RESOLVED] CPU usage high on web-0"


def test_email_to_an_untrusted_certificate_is_refused(smtps_server: SmtpServer) -> None:
    spec = {
        "id": "mail",
        "type": "email",
        "host": "127.0.0.1",
        "port": smtps_server.port,
        "security": "tls",
        "sender": "hostpulse@example.org",
        "to": ["a@example.org"],
    }
    log = deliver(spec, notification(), RetryPolicy(initial_s=0.01, max_attempts=2))
    assert [(a.ok, a.retryable) for a in log.attempts] == [(False, False)]
    assert "CERTIFICATE_VERIFY_FAILED" in (log.attempts[0].error or "")
    assert smtps_server.box.messages == []


def test_email_with_wrong_password_is_not_retried(smtp_server: SmtpServer) -> None:
    spec = {
        "id": "mail",
        "type": "email",
        "host": "127.0.0.1",
        "port": smtp_server.port,
        "username": "alerts",
        "password": "wrong",
        "sender": "hostpulse@example.org",
        "to": ["ops@example.org"],
        "ca_file": smtp_server.ca_file,
    }
    log = deliver(spec, notification())
    assert len(log.attempts) == 1 and not log.attempts[0].ok
    assert log.attempts[0].status == 535
    assert log.finished == [(1, False, log.attempts[0].error)]


def test_receiver_returning_500_gets_notification_after_recovery(
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.statuses = [500, 503, 502]
    log = deliver({"id": "w", "type": "webhook", "url": http_receiver.url}, notification())
    assert len(http_receiver.wait_for(4)) == 4
    assert [(a.ok, a.status) for a in log.attempts] == [
        (False, 500),
        (False, 503),
        (False, 502),
        (True, None),
    ]
    assert log.finished == [(1, True, None)]
    assert log.writes == 4  # the last attempt is recorded with the outcome, in one write


def test_receiver_returning_400_is_tried_once(http_receiver: HttpReceiver) -> None:
    http_receiver.statuses = [400, 400]
    log = deliver({"id": "w", "type": "webhook", "url": http_receiver.url}, notification())
    assert len(http_receiver.requests) == 1
    assert [(a.ok, a.status, a.retryable) for a in log.attempts] == [(False, 400, False)]
    assert log.finished[0][1] is False


def test_unreachable_receiver_is_retried_until_the_limit() -> None:
    from alert_receivers import free_port

    url = f"http://127.0.0.1:{free_port()}/"
    log = deliver(
        {"id": "w", "type": "webhook", "url": url},
        notification(),
        RetryPolicy(initial_s=0.01, max_s=0.02, max_attempts=3),
    )
    assert [a.ok for a in log.attempts] == [False, False, False]
    assert all("ConnectError" in (a.error or "") for a in log.attempts)


def test_a_hanging_channel_does_not_block_another(
    http_receiver: HttpReceiver, tmp_path: Any
) -> None:
    from http.server import ThreadingHTTPServer

    from alert_receivers import _handler

    slow = HttpReceiver(hold=threading.Event())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(slow))
    slow.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    async def main() -> None:
        http = SafeHttp(TargetGuard(LOOPBACK_ALLOW), timeout=20)
        dispatcher = Dispatcher(CLOCK, None, RetryPolicy(initial_s=0.01))
        channels = {
            name: build_channel(
                channel_from_dict({"id": name, "type": "webhook", "url": url}), http, CLOCK
            )
            for name, url in (("slow", slow.url), ("fast", http_receiver.url))
        }
        dispatcher.set_channels(channels)
        dispatcher.submit(Job(None, "slow", notification()))
        dispatcher.submit(Job(None, "fast", notification()))
        await asyncio.to_thread(http_receiver.wait_for, 1)
        assert slow.requests == []  # the slow one is still being held
        assert slow.hold is not None
        slow.hold.set()
        await dispatcher.join()
        await dispatcher.close()
        await http.aclose()

    try:
        asyncio.run(main())
        assert len(slow.requests) == 1
    finally:
        assert slow.hold is not None
        slow.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


HOSTILE = "<!channel> @everyone <https://evil.example|Click> [Click](https://evil.example) & *b*"


def hostile_notification() -> Notification:
    """Agent-controlled text (host id, hostname, series labels) carrying Slack and Discord
    control sequences."""
    view = AlertView(
        id="a0",
        rule_id="cpu_high",
        host="<@U123>",
        labels=(("mount", HOSTILE),),
        state=State.FIRING,
        severity=Severity.CRITICAL,
        value=97.5,
        started_at_ms=CLOCK.now_ms(),
        resolved_at_ms=None,
        host_name=HOSTILE,
    )
    return Notification(
        kind=Kind.FIRING,
        rule_id="cpu_high",
        rule_title="CPU usage high",
        severity=Severity.CRITICAL,
        alerts=(view,),
        created_ms=CLOCK.now_ms(),
        description="see <!here>",
    )


def _mrkdwn_texts(body: dict[str, Any]) -> list[str]:
    texts = [body["text"]]
    for block in body["blocks"]:
        if block["type"] == "section":
            texts.append(block["text"]["text"])
        elif block["type"] == "context":
            texts += [e["text"] for e in block["elements"]]
    return texts


def test_slack_escapes_agent_text_so_it_cannot_mention_or_link(
    http_receiver: HttpReceiver,
) -> None:
    deliver({"id": "s", "type": "slack", "url": http_receiver.url}, hostile_notification())
    body = http_receiver.wait_for(1)[0].json()
    texts = _mrkdwn_texts(body)
    assert len(texts) == 3
    for text in texts:  # no control sequence survives in any field Slack parses
        assert "<" not in text and ">" not in text
        assert "&amp;" in text or "&lt;" in text
    section = texts[1]
    assert "&lt;!channel&gt; @everyone &lt;https://evil.example|Click&gt;" in section
    assert "&lt;@U123&gt;" in section and "&amp; *b*" in section
    assert texts[2] == "see &lt;!here&gt;"
    # the header is plain_text, which Slack shows as written
    assert body["blocks"][0]["text"]["type"] == "plain_text"


def test_discord_escapes_agent_text_and_allows_no_mentions(http_receiver: HttpReceiver) -> None:
    deliver({"id": "d", "type": "discord", "url": http_receiver.url}, hostile_notification())
    body = http_receiver.wait_for(1)[0].json()
    assert body["allowed_mentions"] == {"parse": []}
    (embed,) = body["embeds"]
    (field,) = embed["fields"]
    texts = [body["content"], embed["title"], embed["description"], field["name"], field["value"]]
    for text in texts:
        assert "@everyone" not in text and "@here" not in text
        # every markdown character Discord would read is escaped by a backslash
        unescaped = re.sub(r"\\.", "", text)
        assert not set(unescaped) & set("<>[]()*_~`|#"), text
    assert "@\u200beveryone" in body["content"]
    assert r"\[Click\]\(https://evil.example\)" in field["value"]
    assert r"\<!channel\>" in field["value"] and r"\*b\*" in field["value"]


def test_notifications_name_hosts_by_hostname_with_the_id_alongside(
    http_receiver: HttpReceiver,
) -> None:
    machine_id = "4f0c9d3e2b1a49c8a7d6e5f4c3b2a190"
    n = notification()
    named = Notification(
        kind=n.kind,
        rule_id=n.rule_id,
        rule_title=n.rule_title,
        severity=n.severity,
        alerts=tuple(
            AlertView(**{**{s: getattr(v, s) for s in v.__slots__}, "host": machine_id})
            for v in n.alerts
        ),
        created_ms=n.created_ms,
    )
    from dataclasses import replace

    named = replace(named, alerts=tuple(replace(v, host_name="db-1") for v in named.alerts))
    for spec in (
        {"id": "s", "type": "slack", "url": http_receiver.url},
        {"id": "d", "type": "discord", "url": http_receiver.url},
        {"id": "w", "type": "webhook", "url": http_receiver.url},
    ):
        deliver(spec, named)
    slack, discord, webhook = (r.json() for r in http_receiver.wait_for(3))
    assert slack["text"] == "[CRITICAL] CPU usage high on db-1"
    assert f"db-1 ({machine_id}): firing critical" in slack["blocks"][1]["text"]["text"]
    assert discord["embeds"][0]["fields"][0]["name"] == f"db-1 \\({machine_id}\\)"
    assert webhook["summary"] == "[CRITICAL] CPU usage high on db-1"
    assert (webhook["alerts"][0]["host"], webhook["alerts"][0]["host_name"]) == (machine_id, "db-1")


def test_a_notification_waiting_for_its_retry_does_not_hold_up_the_next_one(
    http_receiver: HttpReceiver,
) -> None:
    """The first notification gets a 503; while its backoff runs (held here until the test
    releases it: no timing), the next notification on the same channel is delivered."""
    http_receiver.statuses = [503]

    async def main() -> tuple[list[str], list[str], Log]:
        release = asyncio.Event()

        async def backoff(_seconds: float) -> None:
            await release.wait()

        http = SafeHttp(TargetGuard(LOOPBACK_ALLOW), timeout=5)
        log = Log()
        dispatcher = Dispatcher(CLOCK, log, RetryPolicy(), sleep=backoff)
        channel = build_channel(
            channel_from_dict({"id": "w", "type": "webhook", "url": http_receiver.url}), http, CLOCK
        )
        dispatcher.set_channels({"w": channel})
        first, second = notification(hosts=1), notification(hosts=2)
        dispatcher.submit(Job(1, "w", first))
        dispatcher.submit(Job(2, "w", second))
        before = await asyncio.to_thread(http_receiver.wait_for, 2)
        release.set()
        after = await asyncio.to_thread(http_receiver.wait_for, 3)
        await dispatcher.join()
        await dispatcher.close()
        await http.aclose()
        hosts = [",".join(a["host"] for a in r.json()["alerts"]) for r in before]
        return hosts, [",".join(a["host"] for a in r.json()["alerts"]) for r in after], log

    before, after, log = asyncio.run(main())
    assert before == ["web-0", "web-0,web-1"]  # the 503, then the next one at once
    assert after == ["web-0", "web-0,web-1", "web-0"]  # the retry once its backoff ended
    assert sorted((a.notification_id, a.attempt, a.ok) for a in log.attempts) == [
        (1, 1, False),
        (1, 2, True),
        (2, 1, True),
    ]
    assert sorted(log.finished) == [(1, True, None), (2, True, None)]


def test_a_storm_of_one_rule_does_not_hold_up_another_rule_and_keeps_its_order(
    http_receiver: HttpReceiver,
) -> None:
    """One channel: the first "storm" notification is held by the receiver; a notification of
    another rule made after the second "storm" one is delivered meanwhile, and the second
    "storm" one is sent only after the first (a rule's notifications keep their order)."""
    http_receiver.hold, http_receiver.hold_rule = threading.Event(), "storm"

    async def main() -> list[tuple[str, int]]:
        http = SafeHttp(TargetGuard(LOOPBACK_ALLOW), timeout=20)
        dispatcher = Dispatcher(CLOCK, None, RetryPolicy(initial_s=0.01))
        channel = build_channel(
            channel_from_dict({"id": "w", "type": "webhook", "url": http_receiver.url}), http, CLOCK
        )
        dispatcher.set_channels({"w": channel})
        storm = dataclasses.replace(notification(hosts=1), rule_id="storm")
        dispatcher.submit(Job(None, "w", storm))
        dispatcher.submit(Job(None, "w", dataclasses.replace(storm, alerts=storm.alerts * 2)))
        dispatcher.submit(Job(None, "w", notification()))
        [other] = await asyncio.to_thread(http_receiver.wait_for, 1)
        assert other.json()["rule_id"] == "cpu_high"  # while the storm's first is held

        def storm_arrived() -> bool:
            with http_receiver.cond:
                return http_receiver.cond.wait_for(lambda: "storm" in http_receiver.arrived, 10)

        assert await asyncio.to_thread(storm_arrived)
        await asyncio.sleep(0.3)
        with http_receiver.cond:
            # the storm's first and the other rule's were sent side by side (either may
            # reach the receiver first); the storm's second waits for its first
            assert sorted(http_receiver.arrived) == ["cpu_high", "storm"]
        assert http_receiver.hold is not None
        http_receiver.hold.set()
        await dispatcher.join()
        await dispatcher.close()
        await http.aclose()
        return [(r.json()["rule_id"], len(r.json()["alerts"])) for r in http_receiver.requests]

    assert asyncio.run(main()) == [("cpu_high", 1), ("storm", 1), ("storm", 2)]
