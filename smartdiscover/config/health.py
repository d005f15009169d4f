"""
The [health] section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from smartdiscover.config import values
from smartdiscover.config.model import HealthSettings

HEALTH_KEYS = ("interval", "timeout", "concurrency", "grace", "advertise_unhealthy", "ca",
               "allow")

Report = Callable[[str | None, str | None, str], None]


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return number


def _readable(path: Path) -> Path:
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    return path


def build_health(section: Mapping[str, str], base: Path, report: Report) -> HealthSettings:
    def get(key: str, convert: Callable[[str], Any], default: Any) -> Any:
        raw = section.get(key)
        if raw is None or not raw.strip():
            return default
        try:
            return convert(raw.strip())
        except ValueError as e:
            report("health", key, str(e))
            return default

    for key in section:
        if key not in HEALTH_KEYS:
            report("health", key, "unknown key (known: " + ", ".join(HEALTH_KEYS) + ")")
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
        ca_file=get("ca", lambda v: _readable(base / v), None),
        allow=get("allow", values.networks, ()),
    )
