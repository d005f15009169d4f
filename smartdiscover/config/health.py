"""
The [health] section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

from smartdiscover.config import values
from smartdiscover.config.model import HealthSettings
from smartdiscover.config.section import Section, readable_file
from smartdiscover.config.networks import NO_NETWORKS

HEALTH_KEYS = ("interval", "timeout", "concurrency", "grace", "advertise_unhealthy", "ca",
               "allow", "probes")

Report = Callable[[str | None, str | None, str], None]


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return number


def build_health(section: Mapping[str, str], base: Path, report: Report) -> HealthSettings:
    get = Section("health", section, HEALTH_KEYS, report).get
    defaults = HealthSettings()
    timeout = get("timeout", _seconds, defaults.timeout)
    if timeout == 0:
        report("health", "timeout", "must be more than 0")
    return HealthSettings(
        interval=get("interval", _seconds, defaults.interval),
        timeout=timeout or defaults.timeout,
        concurrency=max(1, get("concurrency", values.non_negative_int, defaults.concurrency)),
        grace=get("grace", _seconds, defaults.grace),
        advertise_unhealthy=get("advertise_unhealthy", values.boolean,
                                defaults.advertise_unhealthy),
        ca_file=get("ca", lambda v: readable_file(base / v), None),
        allow=get("allow", values.networks, NO_NETWORKS),
        # no: nothing is probed, at start or later (a sealed network).
        probes=get("probes", values.boolean, defaults.probes),
    )
