"""
The ACME client against a real ACME server: Debian's pebble on loopback,
validating each challenge type for real through listeners in this
process, resolving through a DNS server in this process; then a TLS
client that trusts only pebble's root verifies the issued chain.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import crypto
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread, deferToThreadPool
from twisted.python.threadpool import ThreadPool

from smartdiscover.certs.acme.client import (
    AcmeClient,
    AcmeError,
    AcmeSettings,
    ChallengeFailed,
    Responders,
    TermsNotAccepted,
    Unreachable,
)
from smartdiscover.certs.acme.renewal import ManagedCertificate, Renewer
from smartdiscover.certs.acme.responders import (
    DNS01,
    HTTP01,
    TLSALPN01,
    DNS01Records,
    HTTP01Tokens,
    TLSALPN01Certificates,
)
from smartdiscover.certs.acme.store import AcmeStore, StateError, StoredCertificate
from tests.integration import TestCase
from tests.integration.pebble import (
    ChallengeDNS,
    PebbleServer,
    http01_site,
    listen_tls_alpn,
    pebble_installed,
    port_of,
)
from tests.integration.service import free_port

ZONE = "acme.example.test"
CONTACT = ("hostmaster@example.test",)


class _WrongTokens(HTTP01Tokens):
    """
    An HTTP-01 responder that serves the wrong key authorization.
    """

    def lookup(self, token: bytes | str) -> bytes | None:
        found = super().lookup(token)
        return None if found is None else found[::-1]


def served_chain(port: int, name: str, root_pem: bytes) -> list[Any]:
    """
    Blocking: connect to 127.0.0.1:C{port} asking for C{name}, trusting only
    C{root_pem}, and return the verified chain (leaf first) as DER.
    """
    context = ssl.create_default_context(cadata=root_pem.decode("ascii"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return [tls.getpeercert(binary_form=True)]


class PebbleTests(TestCase):
    """
    One pebble per test, with an HTTP-01 site, a TLS-ALPN-01 listener and a
    DNS server that publishes DNS-01 records, all on loopback.
    """

    timeout = 120

    def setUp(self) -> None:
        if not pebble_installed():
            self.skipTest("pebble is not installed (sh tests/install-debian-packages)")
        self.directory = Path(self.mktemp()).absolute()
        self.directory.mkdir(parents=True)
        self.tokens = HTTP01Tokens()
        self.records = DNS01Records()
        self.alpn = TLSALPN01Certificates()
        self.dns = ChallengeDNS([ZONE], self.records)
        dns_port = self.dns.listen(reactor)
        self.addCleanup(self.dns.stop)
        self.site, self.http01 = http01_site(self.tokens)
        http = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(http.stopListening)
        self.tls_port, self.tls = listen_tls_alpn(reactor, self.alpn)
        self.addCleanup(self.tls_port.stopListening)
        self.pebble = PebbleServer(self.directory / "pebble", dns_port, port_of(http),
                                   port_of(self.tls_port))
        self.addCleanup(self.pebble.stop)
        self.pool = ThreadPool(minthreads=0, maxthreads=2, name="acme-test")
        self.pool.start()
        self.addCleanup(self.pool.stop)
        self.store = AcmeStore(self.directory / "state").open()

    def run_in_thread(self, f: Any, *args: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, self.pool, f, *args)

    def settings(self, **changes: Any) -> AcmeSettings:
        values: dict[str, Any] = dict(
            directory=self.pebble.directory_url, contact=CONTACT, agree_terms=True,
            ca_file=self.pebble.ca_file, poll_interval=0.2, validation_timeout=30,
            finalize_timeout=30, request_timeout=10)
        values.update(changes)
        return AcmeSettings(**values)

    def client(self, responders: Responders | None = None, **changes: Any) -> AcmeClient:
        if responders is None:
            responders = Responders(self.tokens, self.records, self.alpn)
        clock: IReactorTime = reactor
        return AcmeClient(self.settings(**changes), self.store, responders, clock,
                          self.run_in_thread)

    @inlineCallbacks
    def verify_served(self, stored: StoredCertificate, name: str) -> Any:
        """
        Serve C{stored} on a TLS listener and connect to it as a client
        that trusts only pebble's root and checks the name.
        """
        root = yield deferToThread(self.pebble.root_pem)
        leaf, *chain = stored.chain
        key = serialization.load_pem_private_key(stored.key_pem, None)
        options = CertificateOptions(
            privateKey=crypto.PKey.from_cryptography_key(key),
            certificate=crypto.X509.from_cryptography(leaf),
            extraCertChain=[crypto.X509.from_cryptography(c) for c in chain])
        port = reactor.listenSSL(0, Factory.forProtocol(Protocol), options,
                                 interface="127.0.0.1")
        try:
            served = yield deferToThread(served_chain, port_of(port), name, root)
        finally:
            yield port.stopListening()
        self.assertEqual(served[0], leaf.public_bytes(serialization.Encoding.DER))
        return root

    def assert_names(self, stored: StoredCertificate, names: list[str]) -> None:
        self.assertEqual(sorted(stored.names), sorted(names))

    @inlineCallbacks
    def test_http01(self) -> Any:
        """
        A certificate for two names proved over HTTP-01: pebble fetched
        each token from the site; the chain verifies against pebble's root
        for either name; the token is withdrawn afterwards.
        """
        names = [f"autodiscover.{ZONE}", f"autoconfig.{ZONE}"]
        stored = yield self.client(challenge=HTTP01).order("example", names)
        self.assert_names(stored, names)
        hosts = {host.split(b":")[0] for host, _ in self.http01.requests if host}
        self.assertEqual(hosts, {name.encode() for name in names})
        self.assertEqual(len(self.tokens), 0)
        for name in names:
            yield self.verify_served(stored, name)
        again = self.store.load_certificate("example")
        assert again is not None
        self.assertEqual(again.chain_pem, stored.chain_pem)
        mode = (self.store.certificates / "example.pem").stat().st_mode & 0o777
        self.assertEqual(mode, 0o600)

    @inlineCallbacks
    def test_idn(self) -> Any:
        """
        An internationalised name is ordered, validated and issued as its
        A-label; a client asking for that name verifies the chain.
        """
        stored = yield self.client().order("idn", [f"bücher.{ZONE}"])
        self.assert_names(stored, [f"xn--bcher-kva.{ZONE}"])
        yield self.verify_served(stored, f"xn--bcher-kva.{ZONE}")

    @inlineCallbacks
    def test_dns01(self) -> Any:
        """
        DNS-01: pebble read the TXT record from the DNS server, which then
        no longer has it; a wildcard name goes by DNS-01 too.
        """
        names = [ZONE, f"*.{ZONE}"]
        stored = yield self.client(challenge=DNS01).order("zone", names)
        self.assert_names(stored, names)
        self.assertIn((f"_acme-challenge.{ZONE}", 16), self.dns.resolver.queries)
        self.assertEqual(self.records.values(f"_acme-challenge.{ZONE}"), ())
        yield self.verify_served(stored, f"anything.{ZONE}")

    @inlineCallbacks
    def test_tls_alpn01(self) -> Any:
        """
        TLS-ALPN-01 (RFC 8737): pebble connected with ALPN acme-tls/1 and
        got the challenge certificate through the ALPN callback, after the
        SNI callback had switched the connection to another context.
        """
        name = f"mail.{ZONE}"
        stored = yield self.client(challenge=TLSALPN01).order("mail", [name])
        self.assert_names(stored, [name])
        self.assertIn((name.encode(), b"acme-tls/1"), self.tls.handshakes)
        self.assertEqual(len(self.alpn), 0)
        yield self.verify_served(stored, name)

    @inlineCallbacks
    def test_challenge_per_name(self) -> Any:
        """
        One order, each name proved by the challenge configured for it.
        """
        names = [f"a.{ZONE}", f"b.{ZONE}", f"c.{ZONE}"]
        client = self.client(challenge=HTTP01,
                             challenges={names[1]: DNS01, names[2]: TLSALPN01})
        stored = yield client.order("mixed", names)
        self.assert_names(stored, names)
        # pebble validates from several perspectives: the same name each time.
        self.assertEqual({(host or b"").split(b":")[0] for host, _ in self.http01.requests},
                         {names[0].encode()})
        self.assertIn((f"_acme-challenge.{names[1]}", 16), self.dns.resolver.queries)
        self.assertIn((names[2].encode(), b"acme-tls/1"), self.tls.handshakes)

    @inlineCallbacks
    def test_account_is_kept(self) -> Any:
        """
        The account is registered once: a second client (a restart) loads
        it from the state directory and orders with it.
        """
        account = yield self.client().register()
        self.assertTrue(account.uri.startswith(f"https://127.0.0.1:{self.pebble.port}/"))
        mode = self.store.account_path(self.pebble.directory_url).stat().st_mode & 0o777
        self.assertEqual(mode, 0o600)
        again = yield self.client().register()
        self.assertEqual(again.uri, account.uri)
        yield self.client().order("again", [f"again.{ZONE}"])

    @inlineCallbacks
    def test_account_forgotten_by_the_ca(self) -> Any:
        """
        The CA no longer knows the stored account (pebble restarted): the
        next client registers the same key again and orders.
        """
        first = yield self.client().register()
        self.pebble.stop()
        self.pebble.start()
        stored = yield self.client().order("anew", [f"anew.{ZONE}"])
        self.assert_names(stored, [f"anew.{ZONE}"])
        account = self.store.load_account(self.pebble.directory_url)
        assert account is not None
        self.assertNotEqual(account.uri, first.uri)
        self.assertEqual(account.key.public_key(), first.key.public_key())

    @inlineCallbacks
    def test_terms_not_accepted(self) -> Any:
        """
        pebble has terms of service: without agree_terms no account is
        made, and the error says why.
        """
        failure = yield self.assertFailure(self.client(agree_terms=False).register(),
                                           TermsNotAccepted)
        self.assertIn("terms of service", str(failure))
        account = self.store.load_account(self.pebble.directory_url)
        assert account is not None
        self.assertIsNone(account.uri)

    @inlineCallbacks
    def test_failed_challenge_keeps_certificate(self) -> Any:
        """
        A renewal that adds a name, answered by a responder that serves the
        wrong key authorization: the order fails naming the new name and
        pebble's reason; the stored certificate stays byte for byte;
        nothing stays published.  (The added name has no authorization
        the CA could reuse, so its challenge runs whatever the CA's reuse
        policy for the first name.)
        """
        name, added = f"autodiscover.{ZONE}", f"autoconfig.{ZONE}"
        first = yield self.client().order("kept", [name])
        wrong = _WrongTokens()
        failure = yield self.assertFailure(
            self.client(Responders(http01=wrong)).order("kept", [name, added]),
            ChallengeFailed)
        self.assertRegex(str(failure),
                         f"({name}|{added}): http-01 validation failed")
        self.assertIn("unauthorized", str(failure))
        self.assertEqual(len(wrong), 0)
        kept = self.store.load_certificate("kept")
        assert kept is not None
        self.assertEqual(kept.chain_pem, first.chain_pem)

    @inlineCallbacks
    def test_withdrawn_challenge(self) -> Any:
        """
        A token withdrawn before the CA looks (an HTTP-01 responder that
        publishes nothing): the order fails with a 404 from the CA's view.
        """
        class Forgetful(HTTP01Tokens):
            def publish(self, token: str, key_authorization: str) -> Deferred[None]:
                published = super().publish(token, key_authorization)
                self.withdraw(token)
                return published

        failure = yield self.assertFailure(
            self.client(Responders(http01=Forgetful())).order("gone", [f"gone.{ZONE}"]),
            ChallengeFailed)
        self.assertIn("404", str(failure))

    @inlineCallbacks
    def test_name_outside_dns(self) -> Any:
        """
        A name the DNS server does not serve: pebble cannot resolve it and
        the order fails with its reason.
        """
        failure = yield self.assertFailure(
            self.client().order("outside", ["autodiscover.elsewhere.test"]), AcmeError)
        self.assertIn("autodiscover.elsewhere.test", str(failure))

    @inlineCallbacks
    def test_corrupted_account(self) -> Any:
        """
        A corrupted account file: the error names the file, nothing is
        registered anew over it.
        """
        path = self.store.account_path(self.pebble.directory_url)
        path.write_bytes(b'{"directory": "')
        failure = yield self.assertFailure(self.client().register(), StateError)
        self.assertIn(str(path), str(failure))
        self.assertEqual(path.read_bytes(), b'{"directory": "')

    @inlineCallbacks
    def test_renewer_replaces_corrupted_certificate(self) -> Any:
        """
        The renewer finds the stored certificate corrupted: it says so in
        its status and orders a new one from pebble, which replaces it.
        """
        name = f"autodiscover.{ZONE}"
        path = self.store.certificate_path("broken")
        path.write_bytes(b"-----BEGIN PRIVATE KEY-----\ntruncated")
        issued: list[StoredCertificate] = []
        clock: IReactorTime = reactor
        renewer = Renewer([ManagedCertificate("broken", (name,))], self.client(),
                          self.store, clock, self.run_in_thread, issued.append,
                          use_renewal_info=False)
        renewer.startService()
        self.addCleanup(renewer.stopService)
        for _ in range(200):
            if issued:
                break
            yield deferLater(reactor, 0.1, lambda: None)
        self.assertEqual([c.names for c in issued], [(name,)])
        status = renewer.status("broken")
        self.assertEqual((status.state, status.failures, status.last_error),
                         ("valid", 0, None))
        stored = self.store.load_certificate("broken")
        assert stored is not None
        self.assertEqual(stored.chain_pem, issued[0].chain_pem)


class PebbleDownTests(TestCase):
    """
    No ACME server where the directory URL points.
    """

    @inlineCallbacks
    def test_unreachable(self) -> Any:
        """
        A clear error naming the URL; no crash, nothing stored but the
        account key.
        """
        store = AcmeStore(Path(self.mktemp())).open()
        url = f"https://127.0.0.1:{free_port()}/dir"
        clock: IReactorTime = reactor
        client = AcmeClient(AcmeSettings(url, CONTACT, True), store,
                            Responders(HTTP01Tokens()), clock,
                            lambda f, *a: deferToThread(f, *a))
        failure = yield self.assertFailure(client.order("x", [f"x.{ZONE}"]), Unreachable)
        self.assertIn(f"the ACME server at {url} cannot be reached", str(failure))
        self.assertEqual(store.labels(), [])
