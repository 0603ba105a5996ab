"""Which peers may tell the server the client's address: only the reverse proxies an operator
names (``trusted_proxies``). Without them ``X-Forwarded-For`` is ignored, so that any process
that can reach the port cannot pick the address the login throttle counts against."""

from __future__ import annotations

import ipaddress


def parse_networks(value: object) -> list[str]:
    """``"127.0.0.1, 10.0.0.0/24"`` or a list of them -> the list, each checked to be an IP
    address or network."""
    if value is None:
        return []
    if isinstance(value, str):
        items: list[object] = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError("expected a comma-separated list of addresses or networks")
    out: list[str] = []
    for item in items:
        text = str(item).strip()
        try:  # normalised: uvicorn reads 10.0.0.1/24 (host bits set) as no network at all
            if "/" in text:
                out.append(str(ipaddress.ip_network(text, strict=False)))
            else:
                out.append(str(ipaddress.ip_address(text)))
        except ValueError:
            raise ValueError(
                f"{text!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/24)"
            ) from None
    return out
