"""
Prometheus metrics, read from the parts at scrape time (prometheus_client's
text format and collector interface; its HTTP server is not used: /metrics
is a twisted.web resource).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)

from smartdiscover.auth.guard import OUTCOMES
from smartdiscover.certs.acme.renewal import RenewalStatus
from smartdiscover.certs.acme.served import served_label
from smartdiscover.certs.report import coverage
from smartdiscover.health.endpoints import EndpointKey, advertised, targets
from smartdiscover.health.probes import days_left

if TYPE_CHECKING:
    from smartdiscover.auth.guard import Guard
    from smartdiscover.certs.selection import CertificateSet
    from smartdiscover.config.model import Model
    from smartdiscover.config.store import ConfigStore
    from smartdiscover.connections import ConnectionLimits
    from smartdiscover.health.monitor import HealthMonitor

# Buckets for request latency: cached answers take milliseconds, a bcrypt
# check a few hundred, a failed login the failure delay.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LatencyCounts:
    """
    One format's request durations: a count per bucket (the last one +Inf)
    and their sum.  Plain numbers, made a histogram at scrape time:
    prometheus_client's Histogram takes a lock per bucket per request.
    """

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # bounds are inclusive
        self.total += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """
        (upper bound, count up to it) pairs, as a histogram exposes them.
        """
        running, pairs = 0, []
        for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), self.buckets):
            running += count
            pairs.append((bound, running))
        return pairs


class Metrics:
    """
    The registry, the request metrics the site feeds, and collectors for
    everything else.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests: Counter[tuple[str, int]] = Counter()
        self._latency: dict[str, LatencyCounts] = {}
        self._sources: list[Callable[[], Iterator[Metric]]] = []
        self.registry.register(_Collector(self))

    def request_finished(self, format_: str, code: int, seconds: float) -> None:
        self._requests[(format_, code)] += 1
        latency = self._latency.get(format_)
        if latency is None:
            latency = self._latency[format_] = LatencyCounts()
        latency.observe(seconds)

    def add_source(self, source: Callable[[], Iterator[Metric]]) -> None:
        """
        C{source()} yields metric families at every scrape.
        """
        self._sources.append(source)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("smartdiscover_requests",
                                       "HTTP requests by format and status code.",
                                       labels=["format", "code"])
        for (format_, code), count in sorted(self._metrics._requests.items()):
            requests.add_metric([format_, str(code)], count)
        yield requests
        latency = HistogramMetricFamily("smartdiscover_request_duration_seconds",
                                        "Time from request to response, by format.",
                                        labels=["format"])
        for format_, counts in sorted(self._metrics._latency.items()):
            latency.add_metric([format_], counts.cumulative(), counts.total)
        yield latency
        for source in self._metrics._sources:
            yield from source()


def store_metrics(store: ConfigStore) -> Callable[[], Iterator[Metric]]:
    def collect() -> Iterator[Metric]:
        yield GaugeMetricFamily("smartdiscover_config_generation",
                                "Generation of the configuration in force.", store.generation)
        yield GaugeMetricFamily("smartdiscover_config_last_reload_ok",
                                "1 if the last reload succeeded (or none failed yet).",
                                0 if store.last_error else 1)
        yield CounterMetricFamily("smartdiscover_config_reloads",
                                  "Reloads applied.", store.reloads)
        yield CounterMetricFamily("smartdiscover_config_reload_failures",
                                  "Reloads refused.", store.reload_failures)
    return collect


def guard_metrics(guard: Guard) -> Callable[[], Iterator[Metric]]:
    def collect() -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "smartdiscover_auth",
            "Logins by outcome: success, failure (a wrong password counted), repeated (a wrong "
            "password seen before, not counted again), throttled (refused by a lock), "
            "malformed, busy, unavailable, error.", labels=["outcome"])
        # Every outcome from the start, at 0 until it happens: a rate or an
        # alert on one needs no first occurrence to exist.
        for outcome in (*OUTCOMES, *sorted(set(guard.outcomes) - set(OUTCOMES))):
            outcomes.add_metric([outcome], guard.outcomes[outcome])
        yield outcomes
        yield CounterMetricFamily("smartdiscover_auth_verifications",
                                  "Password checks that reached the user store.",
                                  guard.verifications)
        yield GaugeMetricFamily("smartdiscover_auth_pending", "Checks waiting or running.",
                                guard.pending)
    return collect


def connection_metrics(limits: dict[str, ConnectionLimits]) -> Callable[[], Iterator[Metric]]:
    """
    Open and refused connections of each group of listeners (C{"http"}:
    HTTPS and plain HTTP; C{"dns"}: DNS over TCP), and their caps.
    """
    def collect() -> Iterator[Metric]:
        open_ = GaugeMetricFamily("smartdiscover_connections_open",
                                  "Connections open now.", labels=["listener"])
        cap = GaugeMetricFamily("smartdiscover_connections_max",
                                "Connections allowed at once.", labels=["listener"])
        refused = CounterMetricFamily("smartdiscover_connections_refused",
                                      "Connections closed at once: a cap was reached.",
                                      labels=["listener"])
        for name, group in sorted(limits.items()):
            open_.add_metric([name], len(group))
            cap.add_metric([name], group.total)
            refused.add_metric([name], group.refused)
        yield open_
        yield cap
        yield refused
    return collect


def dns_metrics(zones: Any) -> Callable[[], Iterator[Metric]]:
    names = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
             5: "REFUSED", 16: "BADVERS"}

    def collect() -> Iterator[Metric]:
        queries = CounterMetricFamily("smartdiscover_dns_responses",
                                      "DNS responses by rcode (UDP and TCP), counted before "
                                      "rate limiting: those it dropped or slipped are in "
                                      "smartdiscover_dns_rrl_total too.", labels=["rcode"])
        for rcode, count in sorted(zones.rcodes.items()):
            queries.add_metric([names.get(rcode, str(rcode))], count)
        yield queries
        limited = CounterMetricFamily("smartdiscover_dns_rrl",
                                      "UDP responses held back by rate limiting.",
                                      labels=["action"])
        limited.add_metric(["dropped"], zones.limiter.dropped)
        limited.add_metric(["slipped"], zones.limiter.slipped)
        yield limited
        yield CounterMetricFamily("smartdiscover_dns_errors",
                                  "Queries that broke the query path.", zones.errors)
    return collect


def left_out(model: Model, down: frozenset[EndpointKey]) -> int:
    """
    How many endpoints of C{model} no answer names because they fail: not
    every endpoint in C{down} (a service whose every host fails is still
    advertised, and URLs always are), only those the advertised model drops.
    """
    if model.health.advertise_unhealthy or not down:
        return 0
    return len(set(targets(model)) - set(targets(advertised(model, down))))


def health_metrics(monitor: HealthMonitor,
                   current_model: Callable[[], Model]) -> Callable[[], Iterator[Metric]]:
    def collect() -> Iterator[Metric]:
        up = GaugeMetricFamily("smartdiscover_endpoint_up",
                               "1 if the last probe of the endpoint succeeded.",
                               labels=["endpoint"])
        expiry = GaugeMetricFamily("smartdiscover_endpoint_certificate_expiry_seconds",
                                   "Seconds until the endpoint's certificate expires.",
                                   labels=["endpoint"])
        latency = GaugeMetricFamily("smartdiscover_endpoint_probe_seconds",
                                    "Duration of the last probe.", labels=["endpoint"])
        now = datetime.now(timezone.utc)
        for status in monitor.statuses.values():
            target = status.target
            name = target.url or f"{target.protocol}://{target.host}:{target.port}"
            if status.ok is not None:
                up.add_metric([name], 1 if status.ok else 0)
            if status.latency is not None:
                latency.add_metric([name], status.latency)
            if status.certificate_expires is not None:
                expiry.add_metric([name], days_left(status.certificate_expires, now) * 86400)
        yield up
        yield expiry
        yield latency
        yield GaugeMetricFamily("smartdiscover_endpoints_left_out",
                                "Endpoints no answer names because they fail "
                                "(advertise_unhealthy = no, another endpoint works).",
                                left_out(current_model(), monitor.down))
    return collect


def certificate_metrics(current_certificates: Callable[[], CertificateSet],
                        current_model: Callable[[], Model]) -> Callable[[], Iterator[Metric]]:
    """
    The certificates this process serves, by label (C{default} for
    C{[server] https}'s), and every served name's coverage.
    """
    def collect() -> Iterator[Metric]:
        certificates = current_certificates()
        now = datetime.now(timezone.utc)
        expiry = GaugeMetricFamily(
            "smartdiscover_certificate_expiry_seconds",
            "Seconds until the served certificate expires (negative: expired).",
            labels=["certificate"])
        names = GaugeMetricFamily("smartdiscover_certificate_names",
                                  "DNS names (wildcards included) the certificate serves.",
                                  labels=["certificate"])
        for certificate in (certificates.default, *certificates.certificates):
            expiry.add_metric([certificate.label],
                              (certificate.not_after - now).total_seconds())
            names.add_metric([certificate.label], len(certificate.shown_names))
        yield expiry
        yield names
        covered = GaugeMetricFamily(
            "smartdiscover_served_name_covered",
            "1 if a certificate covers the served name (public host names, autodiscover. "
            "and autoconfig. of every domain), else 0.", labels=["name", "certificate"])
        uncovered = 0
        for entry in coverage(certificates, current_model()):
            label = entry.certificate.label if entry.certificate is not None else ""
            covered.add_metric([entry.name, label], 1 if entry.certificate is not None else 0)
            uncovered += entry.certificate is None
        yield covered
        yield GaugeMetricFamily("smartdiscover_served_names_uncovered",
                                "Served names no certificate covers.", uncovered)
    return collect


ACME_STATES = ("valid", "ordering", "failing", "missing")


def acme_metrics(statuses: Callable[[], list[RenewalStatus]] | None
                 ) -> Callable[[], Iterator[Metric]]:
    """
    Each ACME certificate's renewal, in the process that orders (nothing
    elsewhere): alert on C{smartdiscover_acme_renewal_failures > 0} long
    before C{smartdiscover_certificate_expiry_seconds} runs out.
    """
    def collect() -> Iterator[Metric]:
        if statuses is None:
            return
        state = GaugeMetricFamily(
            "smartdiscover_acme_certificate_state",
            "1 for the state the ACME certificate is in (valid, ordering, failing, missing).",
            labels=["certificate", "state"])
        failures = GaugeMetricFamily(
            "smartdiscover_acme_renewal_failures",
            "Orders of the certificate that failed in a row (0: the last one succeeded).",
            labels=["certificate"])
        renew_at = GaugeMetricFamily(
            "smartdiscover_acme_renew_at_timestamp_seconds",
            "When the certificate is due for renewal (Unix time).", labels=["certificate"])
        attempt = GaugeMetricFamily(
            "smartdiscover_acme_next_attempt_timestamp_seconds",
            "When the next order or renewal-information check happens (Unix time).",
            labels=["certificate"])
        for status in statuses():
            label = served_label(status.label)
            for name in ACME_STATES:
                state.add_metric([label, name], 1 if status.state == name else 0)
            failures.add_metric([label], status.failures)
            if status.renew_at is not None:
                renew_at.add_metric([label], status.renew_at.timestamp())
            if status.next_attempt is not None:
                attempt.add_metric([label], status.next_attempt.timestamp())
        yield from (state, failures, renew_at, attempt)
    return collect
