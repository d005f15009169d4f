"""
The ACME client: an account, and an order for a set of names answered by
the responders (RFC 8555 through the C{acme} package maintained with
certbot).

Every call into C{acme} blocks (C{requests}, and C{time.sleep} while a
finalized order is processed): each runs through the C{run_in_thread}
the caller hands in (C{deferToThreadPool} on a pool of its own in the
service, a synchronous runner in unit tests), one at a time, since
C{acme}'s client keeps nonces and a session that are not thread-safe.
Publishing and withdrawing challenges, the waits between polls and the
bounds on them run on the reactor thread, on the clock handed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import idna
import josepy as jose
import requests
from acme import client as acme_client
from acme import crypto_util, errors, messages
from acme.challenges import DNS01 as DNS01Challenge
from acme.challenges import HTTP01 as HTTP01Challenge
from acme.challenges import ChallengeResponse, UnrecognizedChallenge
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from requests.adapters import HTTPAdapter
from twisted.internet.defer import Deferred, DeferredLock, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from smartdiscover.certs.acme.responders import (
    CHALLENGE_TYPES,
    DNS01,
    HTTP01,
    TLSALPN01,
    IDNS01Responder,
    IHTTP01Responder,
    ITLSALPN01Responder,
    challenge_certificate,
)
from smartdiscover.certs.acme.store import (
    Account,
    AcmeStore,
    StoredCertificate,
    check_label,
    generate_account_key,
    generate_certificate_key,
    key_pem,
)
from smartdiscover.config.store import RunInThread

T = TypeVar("T")

USER_AGENT = "SmartDiscover (acme-python)"
# Let's Encrypt issues for at most 100 names per certificate.
MAX_NAMES = 100
MAX_NAME = 253
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,128}")


class AcmeError(Exception):
    """
    An ACME operation that failed; the message says why, for the log,
    /health and /metrics.  The certificate in use stays.
    """


class TermsNotAccepted(AcmeError):
    """
    The CA has terms of service and the configuration does not accept them.
    """


class Unreachable(AcmeError):
    """
    The ACME server cannot be reached (refused, timed out, TLS failed).
    """


class RateLimited(AcmeError):
    """
    The CA answered C{rateLimited}.
    """


class ChallengeFailed(AcmeError):
    """
    The CA could not validate a name; the order is void.
    """


@dataclass(frozen=True)
class AcmeSettings:
    """
    What the ACME client is configured with (the C{[acme]} section, once
    config/ reads one).

    @ivar directory: the CA's directory URL.
    @ivar contact: e-mail addresses the CA may write to (no C{mailto:}).
    @ivar agree_terms: whether the administrator accepts the CA's terms of
        service; without it no account is registered with a CA that has
        terms.
    @ivar challenge: the challenge type for names not in C{challenges}.
    @ivar challenges: a challenge type per name (A-label, lower case).
    @ivar ca_file: the CA certificates that the directory's HTTPS
        certificate must chain to, for a private CA (pebble in the tests);
        L{None}: the system's trust store.
    @ivar request_timeout: seconds for each HTTP request to the CA.
    @ivar validation_timeout: seconds for the CA to decide every
        authorization of an order.
    @ivar finalize_timeout: seconds for the CA to issue once finalized.
    @ivar poll_interval: seconds between polls of pending authorizations.
    """

    directory: str
    contact: tuple[str, ...] = ()
    agree_terms: bool = False
    challenge: str = HTTP01
    challenges: Mapping[str, str] = field(default_factory=dict)
    ca_file: Path | None = None
    request_timeout: float = 30.0
    validation_timeout: float = 120.0
    finalize_timeout: float = 120.0
    poll_interval: float = 2.0

    def __post_init__(self) -> None:
        for name, kind in [("*", self.challenge), *self.challenges.items()]:
            if kind not in CHALLENGE_TYPES:
                raise ValueError(f"challenge for {name}: {kind!r} is not one of "
                                 f"{', '.join(CHALLENGE_TYPES)}")

    def challenge_for(self, name: str) -> str:
        """
        The challenge type that proves C{name}: a wildcard can only be
        proved by DNS-01 (RFC 8555 section 7.1.3).
        """
        if name.startswith("*."):
            return DNS01
        return self.challenges.get(name, self.challenge)


@dataclass
class Responders:
    """
    Who answers each challenge type; L{None}: that type is not answered
    here, and a name configured for it fails before anything is ordered.
    """

    http01: IHTTP01Responder | None = None
    dns01: IDNS01Responder | None = None
    tls_alpn01: ITLSALPN01Responder | None = None

    def offers(self, kind: str) -> bool:
        return {HTTP01: self.http01, DNS01: self.dns01, TLSALPN01: self.tls_alpn01}.get(
            kind) is not None


def order_names(names: Sequence[str]) -> tuple[str, ...]:
    """
    C{names} as an order lists them: A-labels (an IDN becomes its punycode
    form), lower case, no trailing dot, each once, in the order given.

    @raise ValueError: none, too many, or one that is no host name.
    """
    found: list[str] = []
    for name in names:
        text = name.strip().rstrip(".")
        wildcard = text.startswith("*.")
        if wildcard:
            text = text[2:]
        try:
            ascii_name = idna.encode(text, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError) as e:
            raise ValueError(f"{name!r} is no host name ({e})") from None
        if "." not in ascii_name or len(ascii_name) > MAX_NAME - 2 * wildcard:
            raise ValueError(f"{name!r} is no fully qualified host name")
        if not re.fullmatch(r"[a-z0-9.-]+", ascii_name):
            raise ValueError(f"{name!r} is no host name")
        ascii_name = ("*." if wildcard else "") + ascii_name
        if ascii_name not in found:
            found.append(ascii_name)
    if not found:
        raise ValueError("no names to order a certificate for")
    if len(found) > MAX_NAMES:
        raise ValueError(f"{len(found)} names: a certificate has at most {MAX_NAMES}")
    return tuple(found)


class _TrustingAdapter(HTTPAdapter):
    """
    Verifies the CA's HTTPS certificate against C{ca_file} instead of the
    system's store, whatever C{acme} (C{verify=True}) or the environment
    (C{REQUESTS_CA_BUNDLE}, which C{requests} puts in its place) asks.
    """

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self._ca_file = ca_file

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        return super().send(request, stream=stream, timeout=timeout,
                            verify=False if verify is False else self._ca_file, cert=cert,
                            proxies=proxies)


class _TLSALPN01Response(ChallengeResponse):
    """
    The response to a TLS-ALPN-01 challenge: the empty JSON object.
    """

    typ = TLSALPN01

    def __bool__(self) -> bool:
        # A response without fields has length 0, and acme would send an
        # empty payload (a POST-as-GET) for a falsy one instead of {}.
        return True


@dataclass
class _Session:
    client: acme_client.ClientV2
    key: jose.JWK
    account: Account


@dataclass
class _Challenge:
    """
    One challenge being answered: its name, type, and how to withdraw it.
    """

    name: str
    kind: str
    authorization: messages.AuthorizationResource
    body: messages.ChallengeBody
    response: ChallengeResponse
    publish: Callable[[], Deferred[None]]
    withdraw: Callable[[], None]


class AcmeClient:
    """
    Registers an account and orders certificates from one CA.
    """

    _log = Logger(namespace="smartdiscover.certs.acme")

    def __init__(self, settings: AcmeSettings, store: AcmeStore, responders: Responders,
                 reactor: IReactorTime, run_in_thread: RunInThread) -> None:
        self.settings = settings
        self._store = store
        self._responders = responders
        self._reactor = reactor
        self._run_in_thread = run_in_thread
        self._lock = DeferredLock()
        self._session: _Session | None = None

    # Public operations, one at a time.

    def register(self) -> Deferred[Account]:
        """
        The registered account: loaded, or made and registered now.

        @raise TermsNotAccepted: the CA has terms and C{agree_terms} is off.
        """
        return self._lock.run(self._account)

    def order(self, label: str, names: Sequence[str]) -> Deferred[StoredCertificate]:
        """
        Order a certificate for C{names} with a fresh key, answer every
        challenge, and store the result as C{label} (replacing what was
        stored only once the new certificate is complete).

        @raise AcmeError: (in the L{Deferred}) why no certificate came:
            L{ChallengeFailed} with the name and the CA's reason,
            L{Unreachable}, L{RateLimited}, L{TermsNotAccepted}, a timeout.
        """
        return self._lock.run(self._order, check_label(label), names)

    def renewal_window(self, certificate: StoredCertificate
                       ) -> Deferred[tuple[datetime | None, datetime]]:
        """
        The CA's renewal information for C{certificate} (ARI, RFC 9773),
        through C{acme}'s C{ClientV2.renewal_time}: a time chosen in the
        CA's suggested window (L{None} when the CA offers no ARI), and when
        to ask again.  Both in UTC.
        """
        return self._lock.run(self._renewal_window, certificate)

    # The steps.

    @inlineCallbacks
    def _account(self) -> Any:
        session = yield self._connected()
        return session.account

    @inlineCallbacks
    def _connected(self) -> Any:
        if self._session is None:
            self._session = yield self._blocking(self._connect)
        return self._session

    def _connect(self) -> _Session:
        """
        Blocking: the account key (loaded or made), the directory, and the
        registration (loaded or made).
        """
        settings = self.settings
        account = self._store.load_account(settings.directory)
        if account is None:
            account = Account(settings.directory, generate_account_key())
            self._store.save_account(account)
        if isinstance(account.key, ec.EllipticCurvePrivateKey):
            key: jose.JWK = jose.JWKEC(key=account.key)
            algorithm = jose.ES256
        else:
            key = jose.JWKRSA(key=account.key)
            algorithm = jose.RS256
        network = acme_client.ClientNetwork(key, alg=algorithm, user_agent=USER_AGENT,
                                            timeout=int(settings.request_timeout))
        if settings.ca_file is not None:
            network.session.mount("https://", _TrustingAdapter(str(settings.ca_file)))
        directory = acme_client.ClientV2.get_directory(settings.directory, network)
        client = acme_client.ClientV2(directory, network)
        if account.uri is not None and account.registration is not None:
            stored = messages.RegistrationResource(
                body=messages.Registration.from_json(account.registration), uri=account.uri)
            try:
                # Once per connection: the CA still knows the account (a
                # CA may forget or deactivate one; pebble forgets all at
                # each start).
                client.query_registration(stored)
                return _Session(client, key, account)
            except messages.Error as e:
                if e.code not in ("accountDoesNotExist", "unauthorized"):
                    raise
                self._log.warn("ACME account {uri} is unknown to the CA ({reason}); "
                               "registering again", uri=account.uri, reason=_problem(e))
                network.account = None
        meta = getattr(directory, "meta", None)
        terms = meta.terms_of_service if meta is not None else None
        if terms and not settings.agree_terms:
            raise TermsNotAccepted(
                f"the CA at {settings.directory} has terms of service ({terms}); "
                "accepting them is the administrator's decision (agree_terms)")
        registration = messages.NewRegistration.from_data(
            email=",".join(settings.contact) if settings.contact else None,
            terms_of_service_agreed=True if settings.agree_terms else None)
        try:
            resource = client.new_account(registration)
        except errors.ConflictError as e:
            # This key has an account already (a crash after registering,
            # before the URL was saved): fetch it.
            resource = client.query_registration(
                messages.RegistrationResource(body=registration, uri=str(e.location)))
        account = Account(settings.directory, account.key, resource.uri,
                          tuple(resource.body.emails), terms,
                          resource.body.to_json())
        self._store.save_account(account)
        self._log.info("ACME account registered at {directory}: {uri}",
                       directory=settings.directory, uri=resource.uri)
        return _Session(client, key, account)

    @inlineCallbacks
    def _order(self, label: str, requested: Sequence[str]) -> Any:
        names = order_names(requested)
        for name in names:
            kind = self.settings.challenge_for(name)
            if not self._responders.offers(kind):
                raise AcmeError(f"{name}: its challenge is {kind}, which nothing here answers")
        session: _Session = yield self._connected()
        key = generate_certificate_key()
        csr = crypto_util.make_csr(key_pem(key), list(names))
        order: messages.OrderResource = yield self._blocking(session.client.new_order, csr)
        published: list[_Challenge] = []
        try:
            pending = []
            for authorization in order.authorizations:
                if authorization.body.status == messages.STATUS_VALID:
                    continue  # proved recently: the CA reuses it
                challenge = self._choose(session, authorization)
                published.append(challenge)
                yield challenge.publish()
                pending.append(challenge)
            if pending:
                yield self._blocking(self._answer, session, pending)
                yield self._decided(session, pending)
        finally:
            # Decided, one way or the other: nothing stays published.
            for challenge in published:
                try:
                    challenge.withdraw()
                except Exception:
                    self._log.failure("withdrawing the {kind} challenge for {name}",
                                      kind=challenge.kind, name=challenge.name)
        deadline = datetime.now() + timedelta(seconds=self.settings.finalize_timeout)
        order = yield self._blocking(session.client.finalize_order, order, deadline)
        stored = yield self._blocking(self._keep, label, names, key, order.fullchain_pem)
        self._log.info("ACME certificate {label} issued for {names}, valid until {expiry}",
                       label=label, names=", ".join(names),
                       expiry=stored.not_after.isoformat())
        return stored

    def _choose(self, session: _Session, authorization: messages.AuthorizationResource
                ) -> _Challenge:
        body = authorization.body
        name = str(body.identifier.value)
        if body.wildcard:
            name = "*." + name
        kind = self.settings.challenge_for(name)
        for challenge in body.challenges:
            if _kind(challenge) == kind:
                return self._prepare(session, name, kind, authorization, challenge)
        offered = ", ".join(sorted({_kind(c) for c in body.challenges})) or "none"
        raise AcmeError(f"{name}: the CA does not offer {kind} (it offers {offered})")

    def _prepare(self, session: _Session, name: str, kind: str,
                 authorization: messages.AuthorizationResource,
                 body: messages.ChallengeBody) -> _Challenge:
        """
        What to publish for one challenge, and how to withdraw it.
        """
        chall = body.chall
        bare = name.removeprefix("*.")
        publish: Callable[[], Deferred[None]]
        withdraw: Callable[[], None]
        response: ChallengeResponse
        if kind == HTTP01 and isinstance(chall, HTTP01Challenge):
            http01 = self._responders.http01
            assert http01 is not None
            token = chall.encode("token")
            response, authorization_key = chall.response_and_validation(session.key)
            publish = partial(http01.publish, token, authorization_key)
            withdraw = partial(http01.withdraw, token)
        elif kind == DNS01 and isinstance(chall, DNS01Challenge):
            dns01 = self._responders.dns01
            assert dns01 is not None
            owner = chall.validation_domain_name(bare)
            response, value = chall.response_and_validation(session.key)
            publish = partial(dns01.publish, owner, value)
            withdraw = partial(dns01.withdraw, owner, value)
        elif kind == TLSALPN01 and isinstance(chall, UnrecognizedChallenge):
            tls = self._responders.tls_alpn01
            assert tls is not None
            token = chall.jobj.get("token")
            if not isinstance(token, str) or not _TOKEN.fullmatch(token):
                raise AcmeError(f"{name}: the CA sent a TLS-ALPN-01 challenge without a "
                                "usable token")
            certificate, key = challenge_certificate(bare, key_authorization(token, session.key))
            response = _TLSALPN01Response()
            publish = partial(tls.publish, bare, certificate, key)
            withdraw = partial(tls.withdraw, bare)
        else:
            raise AcmeError(f"{name}: the CA's {kind} challenge cannot be read")
        return _Challenge(name, kind, authorization, body, response, publish, withdraw)

    def _answer(self, session: _Session, challenges: list[_Challenge]) -> None:
        """
        Blocking: tell the CA that every challenge is ready.
        """
        for challenge in challenges:
            session.client.answer_challenge(challenge.body, challenge.response)

    @inlineCallbacks
    def _decided(self, session: _Session, challenges: list[_Challenge]) -> Any:
        """
        Poll the authorizations until the CA decided each, within
        C{validation_timeout} on the reactor's clock.
        """
        deadline = self._reactor.seconds() + self.settings.validation_timeout
        waiting = {challenge.name: challenge for challenge in challenges}
        while True:
            states = yield self._blocking(self._poll, session, list(waiting.values()))
            failures = []
            for name, (status, reason) in states.items():
                if status == messages.STATUS_VALID:
                    waiting.pop(name)
                elif status in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
                    continue
                else:
                    failures.append(f"{name}: {waiting[name].kind} validation failed: "
                                    f"{reason or status}")
            if failures:
                raise ChallengeFailed("; ".join(failures))
            if not waiting:
                return None
            if self._reactor.seconds() + self.settings.poll_interval > deadline:
                raise AcmeError(f"the CA did not decide {', '.join(sorted(waiting))} within "
                                f"{self.settings.validation_timeout:g} s")
            yield deferLater(self._reactor, self.settings.poll_interval, lambda: None)

    def _poll(self, session: _Session, challenges: list[_Challenge]
              ) -> dict[str, tuple[messages.Status, str | None]]:
        """
        Blocking: the status of each authorization, and the CA's reason
        when it is invalid.
        """
        states = {}
        for challenge in challenges:
            resource, _ = session.client.poll(challenge.authorization)
            reason = None
            for body in resource.body.challenges:
                if body.error is not None:
                    reason = _problem(body.error)
            states[challenge.name] = (resource.body.status, reason)
        return states

    def _keep(self, label: str, names: tuple[str, ...], key: ec.EllipticCurvePrivateKey,
              fullchain_pem: str | None) -> StoredCertificate:
        """
        Blocking: check what the CA issued and store it.
        """
        try:
            chain = x509.load_pem_x509_certificates((fullchain_pem or "").encode("ascii"))
        except (ValueError, UnicodeError) as e:
            raise AcmeError(f"the CA's certificate for {label} is unreadable ({e})") from None
        if chain[0].public_key() != key.public_key():
            raise AcmeError(f"the CA's certificate for {label} is not for the key ordered")
        try:
            issued = set(chain[0].extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            issued = set()
        missing = sorted(set(names) - issued)
        if missing:
            raise AcmeError(f"the CA's certificate for {label} lacks {', '.join(missing)}")
        return self._store.save_certificate(label, key, chain)

    def _renewal_window(self, certificate: StoredCertificate) -> Deferred[Any]:
        def ask(session: _Session) -> Deferred[Any]:
            pem = certificate.leaf.public_bytes(serialization.Encoding.PEM)
            return self._blocking(session.client.renewal_time, pem)

        def utc(window: tuple[datetime | None, datetime]) -> tuple[datetime | None, datetime]:
            when, again = window
            return (_utc(when) if when is not None else None), _utc(again)
        return self._connected().addCallback(ask).addCallback(utc)

    def _blocking(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        """
        C{f(*args)} off the reactor thread, with C{acme}'s and
        C{requests}' exceptions turned into L{AcmeError}s that say why.
        """
        return self._run_in_thread(explain_errors, self.settings.directory, f, *args)


def key_authorization(token: str, key: jose.JWK) -> str:
    """
    RFC 8555 section 8.1: C{token.base64url(SHA-256 JWK thumbprint)}.
    """
    return f"{token}.{jose.b64encode(key.thumbprint()).decode('ascii')}"


def _kind(challenge: messages.ChallengeBody) -> str:
    chall = challenge.chall
    if isinstance(chall, UnrecognizedChallenge):
        return str(chall.jobj.get("type", ""))
    return str(getattr(chall, "typ", ""))


def _problem(error: messages.Error) -> str:
    text = error.detail or error.description or str(error.typ)
    return f"{text} ({error.typ})"


def _utc(when: datetime) -> datetime:
    # acme computes its own times with naive datetime.now() (local time).
    return when.astimezone(timezone.utc)


def explain_errors(directory: str, f: Callable[..., T], *args: Any) -> T:
    try:
        return f(*args)
    except AcmeError:
        raise
    except messages.Error as e:
        if e.code == "rateLimited":
            raise RateLimited(f"the CA refused: rate limited: {_problem(e)}") from None
        raise AcmeError(f"the CA refused: {_problem(e)}") from None
    except requests.exceptions.SSLError as e:
        raise Unreachable(f"the ACME server at {directory} failed TLS verification "
                          f"({_first_line(e)})") from None
    except requests.exceptions.Timeout:
        raise Unreachable(f"the ACME server at {directory} did not answer in time") from None
    except requests.exceptions.ConnectionError as e:
        raise Unreachable(f"the ACME server at {directory} cannot be reached "
                          f"({_first_line(e)})") from None
    except requests.exceptions.RequestException as e:
        raise AcmeError(f"the request to the ACME server failed ({_first_line(e)})") from None
    except errors.TimeoutError:
        raise AcmeError("the CA did not issue the certificate in time") from None
    except errors.IssuanceError as e:
        raise AcmeError(f"the CA did not issue the certificate: {_problem(e.error)}") from None
    except errors.Error as e:
        raise AcmeError(f"ACME: {_first_line(e)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


__all__ = [
    "AcmeClient",
    "AcmeError",
    "AcmeSettings",
    "ChallengeFailed",
    "RateLimited",
    "Responders",
    "TermsNotAccepted",
    "Unreachable",
    "key_authorization",
    "order_names",
]
