"""
The certificates one process serves, and which one a connection gets.

Every connection starts in the default certificate's context; OpenSSL
calls L{CertificateSet.context_for} with the client's SNI value, and the
connection switches to the chosen certificate's context
(C{SSL.Connection.set_context}, through Twisted's public
C{CertificateOptions(contextForServerName=...)}).  A set is immutable: a
reload builds a new one and swaps the creator's reference, so a connection
keeps the context it was handed and new connections get the new set.

Which certificate serves a name (docs/certificates.md):

 1. one that names it exactly, before one whose wildcard covers it;
 2. among those, the first valid now (not expired, not before its time);
 3. among equals, the first in configuration order: C{[certificates]} in
    file order, other sources after them, the default (C{[server] https})
    last;
 4. when none covers it, or the client sent no usable name: the default.

A set may answer ALPN too (TLS-ALPN-01, RFC 8737): OpenSSL calls the ALPN
callback after the SNI switch, and the context switched to is the one
whose callback it calls, so every context a connection can be in gets it.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence
from weakref import WeakKeyDictionary

from OpenSSL import SSL
from twisted.internet.ssl import CertificateOptions

from smartdiscover.certs.certificate import ServedCertificate, build_certificate, server_options
from smartdiscover.certs.names import server_name

# An ALPN select callback as pyOpenSSL calls it: it returns the protocol
# chosen among those offered, or SSL.NO_OVERLAPPING_PROTOCOLS (of a class
# pyOpenSSL keeps private, hence Any).
ALPNSelect = Callable[[SSL.Connection, list[bytes]], Any]


class CertificateSet:
    """
    A default certificate and the others, with the lookup tables built once.

    @ivar default: for clients without SNI or with a name no certificate
        covers.
    @ivar certificates: the others, in order of precedence.
    @ivar options: the options of the context every connection starts in:
        the default's certificate, with the SNI callback.
    @ivar alpn: the ALPN select callback of every context a connection can
        be in (the starting one, and each certificate's but the default's,
        which SNI never switches to), in place of Twisted's, which selects
        among the protocols the listener's site speaks; or L{None}: Twisted's
        stays.  OpenSSL runs the callback of the context SNI chose.
    """

    def __init__(self, default: ServedCertificate, certificates: Sequence[ServedCertificate] = (),
                 clock: Callable[[], float] = time.time, alpn: ALPNSelect | None = None) -> None:
        self.default = default
        self.certificates = tuple(_answering(certificate, alpn) for certificate in certificates)
        self.alpn = alpn
        self._clock = clock
        exact: dict[str, list[ServedCertificate]] = {}
        wildcard: dict[str, list[ServedCertificate]] = {}
        for certificate in self.in_precedence:
            for name in certificate.names:
                exact.setdefault(name, []).append(certificate)
            for parent in certificate.wildcards:
                wildcard.setdefault(parent, []).append(certificate)
        self._exact = {name: tuple(found) for name, found in exact.items()}
        self._wildcard = {parent: tuple(found) for parent, found in wildcard.items()}
        self.options: CertificateOptions = server_options(default.key, default.chain,
                                                          self.context_for)
        # Built now, where the set is (off the reactor thread).
        _install(self.options.getContext(), alpn)

    @property
    def in_precedence(self) -> tuple[ServedCertificate, ...]:
        """
        Every certificate, the default last.
        """
        return (*self.certificates, self.default)

    @property
    def labels(self) -> dict[str, ServedCertificate]:
        return {certificate.label: certificate for certificate in self.in_precedence}

    def candidates(self, name: str) -> tuple[ServedCertificate, ...]:
        """
        The certificates that cover C{name} (a lookup key), best first but
        for validity: exact names in order, then wildcards in order.
        """
        _, dot, parent = name.partition(".")
        return self._exact.get(name, ()) + (self._wildcard.get(parent, ()) if dot else ())

    def covering(self, name: str) -> ServedCertificate | None:
        """
        The certificate that serves C{name} (a lookup key), or L{None} when
        no certificate covers it.
        """
        found = self.candidates(name)
        if not found:
            return None
        if len(found) > 1:
            now = self._clock()
            for certificate in found:
                if certificate.valid_at(now):
                    return certificate
        return found[0]

    def select(self, raw: bytes | None) -> ServedCertificate:
        """
        The certificate for a client that sent C{raw} as its SNI value.
        """
        name = server_name(raw)
        return (self.covering(name) if name is not None else None) or self.default

    def context_for(self, raw: bytes | None) -> SSL.Context | None:
        """
        OpenSSL's servername callback (through Twisted): the context to
        switch to, or L{None} to stay in the default's.  Never raises for
        any client input (Twisted would abort the connection).
        """
        chosen = self.select(raw)
        return None if chosen is self.default else chosen.context

    def for_domain(self, domain: str, public_hostname: str) -> ServedCertificate:
        """
        The certificate that serves C{domain}'s own names, to sign its
        profiles with: the first of C{autodiscover.<domain>}, C{<domain>},
        C{autoconfig.<domain>} and the domain's public host name that a
        certificate covers; the default when none does.
        """
        for name in (f"autodiscover.{domain}", domain, f"autoconfig.{domain}", public_hostname):
            found = self.covering(name)
            if found is not None:
                return found
        return self.default

    def same_as(self, default: ServedCertificate,
                certificates: Sequence[ServedCertificate]) -> bool:
        """
        Whether this set holds exactly these certificate objects, in order.
        """
        return default is self.default and len(certificates) == len(self.certificates) and all(
            a is b for a, b in zip(certificates, self.certificates))

    def replacing(self, certificate: ServedCertificate) -> CertificateSet:
        """
        A new set with C{certificate} in place of the one with its label
        (appended when there is none): how a source that renews on its own
        (ACME) swaps one certificate without a reload.
        """
        if certificate.label == self.default.label:
            return CertificateSet(certificate, self.certificates, self._clock, self.alpn)
        others = list(self.certificates)
        for index, old in enumerate(others):
            if old.label == certificate.label:
                others[index] = certificate
                break
        else:
            others.append(certificate)
        return CertificateSet(self.default, others, self._clock, self.alpn)


# The ALPN callback a set installed on a context, for as long as the
# context lives: one at most, so no set changes another's.
_INSTALLED: WeakKeyDictionary[SSL.Context, ALPNSelect] = WeakKeyDictionary()


def _install(context: SSL.Context, alpn: ALPNSelect | None) -> bool:
    """
    Whether C{context} answers ALPN with C{alpn} once this returns (for
    L{None}: with the callback Twisted gives every context, as it did
    before ACME).  L{False} when it cannot: it has another set's callback
    (Twisted's cannot be put back either), or it served connections
    (pyOpenSSL changes no context then).
    """
    installed = _INSTALLED.get(context)
    if installed == alpn:
        return True
    if installed is not None or alpn is None:
        return False
    try:
        context.set_alpn_select_callback(alpn)
    except ValueError:
        return False
    _INSTALLED[context] = alpn
    return True


def _answering(certificate: ServedCertificate, alpn: ALPNSelect | None) -> ServedCertificate:
    """
    C{certificate}, its context answering ALPN with C{alpn}; when that
    context cannot (another callback, connections served already), a copy
    built anew from the same bytes (blocking).
    """
    if _install(certificate.context, alpn):
        return certificate
    copy = build_certificate(certificate.label, certificate.origin,
                             certificate.certificate_pem, certificate.key_pem)
    _install(copy.context, alpn)
    return copy
