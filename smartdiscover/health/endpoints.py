"""
What SmartDiscover advertises, as probe targets; and the advertised model
when unhealthy endpoints are to be left out (advertise_unhealthy = no).
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Callable
from urllib.parse import urlsplit

from smartdiscover.config.model import Catalogue, Model, Security, SocketService
from smartdiscover.health.probes import Target

EndpointKey = tuple[str, ...]


def service_key(service: SocketService) -> EndpointKey:
    return (service.name, service.host, str(service.port), service.security.value,
            service.transport or "")


def url_key(url: str) -> EndpointKey:
    return ("url", url)


def targets(model: Model) -> dict[EndpointKey, Target]:
    """
    Every endpoint any served domain is told about, once each.
    """
    found: dict[EndpointKey, Target] = {}
    for domain in model.domains:
        catalogue = model.catalogue_for(domain)
        for service in catalogue.services:
            found.setdefault(service_key(service), Target(
                protocol=service.name, host=service.host, port=service.port,
                security=service.security, transport=service.transport or "tcp",
                domain=domain))
        for url in catalogue.urls.values():
            parts = urlsplit(url)
            found.setdefault(url_key(url), Target(
                protocol="https", host=parts.hostname or "", port=parts.port or 443,
                security=Security.SSL, url=url))
    return found


def _without(catalogue: Catalogue, down: frozenset[EndpointKey]) -> Catalogue:
    """
    C{catalogue} without the endpoints in C{down}, except that a service
    keeps all its endpoints when none of them would remain.
    """
    keep = []
    for service in catalogue.services:
        if service_key(service) not in down:
            keep.append(service)
        elif all(service_key(s) in down for s in catalogue.services_named(service.name)):
            keep.append(service)  # no healthy alternative: advertise it anyway
    if len(keep) == len(catalogue.services):
        return catalogue
    return replace(catalogue, services=tuple(keep))


def advertised(model: Model, down: frozenset[EndpointKey]) -> Model:
    """
    The model clients are told about: C{model} itself, or, with
    advertise_unhealthy = no, without the endpoints that have failed for
    longer than the grace period while a healthy alternative exists.
    """
    if model.health.advertise_unhealthy or not down:
        return model
    catalogue = _without(model.catalogue, down)
    domains = {domain: _without(c, down) for domain, c in model.domain_catalogues.items()}
    if catalogue is model.catalogue and all(
            domains[d] is model.domain_catalogues[d] for d in domains):
        return model
    return replace(model, catalogue=catalogue, domain_catalogues=MappingProxyType(domains))


class AdvertisedModel:
    """
    The advertised model of the model in force, recomputed only when the
    model or the set of failing endpoints changes.
    """

    def __init__(self, current_model: Callable[[], Model],
                 current_down: Callable[[], frozenset[EndpointKey]]) -> None:
        self._current_model = current_model
        self._current_down = current_down
        self._key: tuple[Model, frozenset[EndpointKey]] | None = None
        self._value: Model | None = None

    def __call__(self) -> Model:
        model, down = self._current_model(), self._current_down()
        if self._key is None or self._key[0] is not model or self._key[1] != down:
            self._key, self._value = (model, down), advertised(model, down)
        assert self._value is not None
        return self._value
