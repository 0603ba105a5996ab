"""Network interfaces: bytes, packets, errors and drops (counters and rates), link speed and
bandwidth utilisation.

Linux reads /proc/net/dev and /sys/class/net/<if>/speed; other platforms use psutil.
"""

from __future__ import annotations

import logging

import psutil

from hostpulse.agent.collectors import procfs
from hostpulse.agent.collectors._common import (
    add,
    read_text,
)
from hostpulse.agent.collectors.base import Labels, Reading
from hostpulse.agent.collectors.devices import DeviceCounterCollector

logger = logging.getLogger(__name__)

NAME = "network"
_COUNTERS = (
    "network_receive_bytes",
    "network_transmit_bytes",
    "network_receive_packets",
    "network_transmit_packets",
    "network_receive_errors",
    "network_transmit_errors",
    "network_receive_drops",
    "network_transmit_drops",
)
_RATE_KEY = {
    "network_receive_bytes": "network_receive_bytes_per_second",
    "network_transmit_bytes": "network_transmit_bytes_per_second",
    "network_receive_packets": "network_receive_packets_per_second",
    "network_transmit_packets": "network_transmit_packets_per_second",
    "network_receive_errors": "network_receive_errors_per_second",
    "network_transmit_errors": "network_transmit_errors_per_second",
    "network_receive_drops": "network_receive_drops_per_second",
    "network_transmit_drops": "network_transmit_drops_per_second",
}
_SPEED_KEYS = ("network_speed_bytes_per_second", "network_utilization_percent")


class NetworkCollector(DeviceCounterCollector[tuple[int, ...]]):
    name = NAME
    _speeds: dict[str, float | None]  # bytes/s; None = the link reports none

    def _forget(self) -> None:
        self._speeds = {}  # a link can renegotiate or an interface be replaced

    def collect(self, now: float) -> Reading:
        reading, interfaces = self._begin()
        if interfaces is None:
            return reading
        if not self._procfs and any(i not in self._speeds for i in interfaces):
            self._psutil_speeds()
        any_speed = False
        for iface, values in interfaces.items():
            labels: Labels = (("interface", iface),)
            rates: dict[str, float] = {}
            for key, value in zip(_COUNTERS, values, strict=True):
                add(reading, key, value, labels)
                rate = self._counters.rate((iface, key), value, now)
                if rate is not None:
                    rates[key] = rate
                    add(reading, _RATE_KEY[key], rate, labels)
            speed = self._speed(iface)
            if speed is None:
                continue
            any_speed = True
            add(reading, "network_speed_bytes_per_second", speed, labels)
            if "network_receive_bytes" in rates and "network_transmit_bytes" in rates:
                busier = max(rates["network_receive_bytes"], rates["network_transmit_bytes"])
                add(reading, "network_utilization_percent", busier / speed * 100.0, labels)
        if not any_speed:  # virtual machines, containers: no interface reports a link speed
            reading.unsupported.update(_SPEED_KEYS)
        self._counters.retain((i, k) for i in interfaces for k in _COUNTERS)
        return reading

    def _read_linux(self) -> dict[str, tuple[int, ...]]:
        return {
            name: (
                d.rx_bytes,
                d.tx_bytes,
                d.rx_packets,
                d.tx_packets,
                d.rx_errors,
                d.tx_errors,
                d.rx_drops,
                d.tx_drops,
            )
            for name, d in procfs.parse_net_dev(self._files.text(f"{self._proc}/net/dev")).items()
        }

    def _read_psutil(self) -> dict[str, tuple[int, ...]]:
        return {
            name: (
                c.bytes_recv,
                c.bytes_sent,
                c.packets_recv,
                c.packets_sent,
                c.errin,
                c.errout,
                c.dropin,
                c.dropout,
            )
            for name, c in psutil.net_io_counters(pernic=True, nowrap=False).items()
        }

    def _speed(self, iface: str) -> float | None:
        if iface in self._speeds:
            return self._speeds[iface]
        speed: float | None = None
        if self._procfs:
            try:
                mbits = int(read_text(f"{self._sys}/class/net/{iface}/speed"))
            except (OSError, ValueError):  # EINVAL for virtual or down links
                mbits = 0
            speed = mbits * 1e6 / 8 if mbits > 0 else None
        self._speeds[iface] = speed
        return speed

    def _psutil_speeds(self) -> None:
        try:
            stats = psutil.net_if_stats()
        except (OSError, psutil.Error):
            return
        for iface, st in stats.items():
            self._speeds[iface] = st.speed * 1e6 / 8 if st.speed > 0 else None
