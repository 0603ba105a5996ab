"""Outbound targets into the server's own network are refused unless allow-listed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alert_receivers import LOOPBACK_ALLOW, HttpReceiver

from hostpulse.alerts.channels import build_channel, channel_from_dict
from hostpulse.alerts.clock import ManualClock
from hostpulse.alerts.exceptions import DeliveryError, ResolutionError, UnsafeTargetError
from hostpulse.alerts.net import SafeHttp, TargetGuard
from hostpulse.alerts.types import Kind, Notification

REFUSED = [
    "http://127.0.0.1/hook",
    "http://127.0.0.2:8080/",
    "http://localhost/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://2130706433/",  # 127.0.0.1 in decimal
    "http://0x7f000001/",  # 127.0.0.1 in hex
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://3232235777/",  # 192.168.1.1
    "http://0xA9FEA9FE/",  # 169.254.169.254
    "http://017700000001/",  # octal
    # IPv6 forms that carry a refused IPv4 address
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::a9fe:a9fe]/",  # IPv4-compatible metadata address
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
    "http://[64:ff9b::127.0.0.1]/",  # NAT64
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b:1::a9fe:a9fe]/",  # local-use NAT64
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
    "http://[2002:c0a8:101::1]/",  # 6to4 of 192.168.1.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
]


def check(url: str, allow: tuple[str, ...] = (), resolver: Any = None) -> Any:
    return asyncio.run(TargetGuard(allow, resolver).check_url(url))


@pytest.mark.parametrize("url", REFUSED)
def test_private_loopback_link_local_and_numeric_spellings_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTargetError, match=r"allow-list|resolves"):
        check(url)


@pytest.mark.parametrize(
    "url", ["http://[::ffff:8.8.8.8]/", "http://[64:ff9b::8.8.8.8]/", "http://[2002:808:808::1]/"]
)
def test_ipv6_forms_of_a_public_ipv4_address_are_accepted(url: str) -> None:
    check(url)


def test_the_refusal_names_the_setting_that_allows_it() -> None:
    with pytest.raises(UnsafeTargetError, match=r"allow_networks"):
        check("http://10.0.0.7/")


def test_allow_list_covers_the_ipv4_address_an_ipv6_form_carries() -> None:
    assert check("http://[2002:7f00:1::]/", ("127.0.0.0/8",)).address
    assert check("http://[64:ff9b::127.0.0.1]/", ("127.0.0.0/8",)).address
    with pytest.raises(UnsafeTargetError):
        check("http://[64:ff9b::a9fe:a9fe]/", ("127.0.0.0/8",))


def test_public_address_is_accepted_and_pinned() -> None:
    target = check("https://93.184.215.14:8443/x?y=1")
    assert str(target.address) == "93.184.215.14"
    assert str(target.pinned_url) == "https://93.184.215.14:8443/x?y=1"


def test_allow_list_permits_exactly_the_listed_network() -> None:
    assert str(check("http://2130706433/", ("127.0.0.0/8",)).address) == "127.0.0.1"
    assert str(check("http://10.0.0.7/", ("10.0.0.0/24",)).address) == "10.0.0.7"
    with pytest.raises(UnsafeTargetError):
        check("http://10.0.1.7/", ("10.0.0.0/24",))
    with pytest.raises(UnsafeTargetError):
        check("http://[::1]/", ("127.0.0.0/8",))


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {"hooks.example.com": ["93.184.215.14", "10.0.0.5"]}[host]

    with pytest.raises(UnsafeTargetError, match=r"10\.0\.0\.5"):
        check("https://hooks.example.com/x", resolver=resolver)


def test_unresolvable_name_is_a_retryable_failure() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("Temporary failure in name resolution")

    async def main() -> None:
        http = SafeHttp(TargetGuard((), resolver))
        try:
            spec = channel_from_dict({"id": "w", "type": "webhook", "url": "http://h.example/"})
            await build_channel(spec, http, ManualClock()).send(_notification())
        finally:
            await http.aclose()

    with pytest.raises(DeliveryError, match="cannot resolve") as info:
        asyncio.run(main())
    assert info.value.retryable


def test_other_schemes_and_credentials_are_refused() -> None:
    for url in ("file:///etc/passwd", "gopher://1.2.3.4/", "ftp://1.2.3.4/"):
        with pytest.raises(UnsafeTargetError, match="scheme"):
            check(url)
    with pytest.raises(UnsafeTargetError, match="credentials"):
        check("http://user:pw@93.184.215.14/")


def test_connection_goes_to_the_checked_address_with_the_original_host_header(
    http_receiver: HttpReceiver,
) -> None:
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    async def main() -> int:
        http = SafeHttp(TargetGuard(LOOPBACK_ALLOW, resolver))
        try:
            url = f"http://receiver.test:{http_receiver.port}/pinned"
            response = await http.request("POST", url, content=b"{}")
            return response.status_code
        finally:
            await http.aclose()

    assert asyncio.run(main()) == 200
    (req,) = http_receiver.wait_for(1)
    assert req.headers["host"] == f"receiver.test:{http_receiver.port}"
    assert req.path == "/pinned"
    assert lookups == ["receiver.test"]  # resolved once, by the guard only


def _notification() -> Notification:
    return Notification(Kind.TEST, "test", "test", None, (), 0)


def _send(spec: dict[str, Any], allow: tuple[str, ...]) -> None:
    async def main() -> None:
        http = SafeHttp(TargetGuard(allow))
        try:
            await build_channel(channel_from_dict(spec), http, ManualClock()).send(_notification())
        finally:
            await http.aclose()

    asyncio.run(main())


def test_webhook_to_loopback_fails_without_allow_list(http_receiver: HttpReceiver) -> None:
    with pytest.raises(DeliveryError) as info:
        _send({"id": "w", "type": "webhook", "url": http_receiver.url}, ())
    assert not info.value.retryable
    assert http_receiver.requests == []
    _send({"id": "w", "type": "webhook", "url": http_receiver.url}, LOOPBACK_ALLOW)
    assert len(http_receiver.requests) == 1


def test_redirect_to_a_private_address_is_not_followed(http_receiver: HttpReceiver) -> None:
    http_receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(DeliveryError, match="redirect") as info:
        _send({"id": "w", "type": "webhook", "url": http_receiver.url}, LOOPBACK_ALLOW)
    assert not info.value.retryable
    assert len(http_receiver.requests) == 1


def test_smtp_host_is_checked_the_same_way() -> None:
    spec = {
        "id": "m",
        "type": "email",
        "host": "0x7f000001",
        "port": 25,
        "sender": "a@b.c",
        "to": ["x@y.z"],
    }
    with pytest.raises(DeliveryError, match="allow-list"):
        _send(spec, ())


def test_a_host_name_that_is_not_valid_idna_is_a_resolution_error() -> None:
    # found by schemathesis: the system resolver raised UnicodeError (a 500 from the API);
    # the name is refused while being encoded, before any lookup leaves the machine
    with pytest.raises(ResolutionError, match="cannot resolve"):
        asyncio.run(TargetGuard().check_host("\u00c8-g\u00912\u00cb.example", 25))
