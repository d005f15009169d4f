"""
Tests for the failure delay and the indistinguishable 401 of
L{smartdiscover.web.basic_auth.BasicAuthResource}, over the real site
(L{SmartSite} on a L{StringTransport}), the real resource tree and the
L{Guard} in front of the password-file checker (SECURITY.md sections 3.3
and 3.4; issue 6, section 2).

The authentication resource gets its own L{Clock}, so every delayed call
on it is the failure delay's; the site's deadlines run on another.
"""

from __future__ import annotations

import base64
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource

from smartdiscover.auth.credentials import BasicCredentials
from smartdiscover.auth.errors import BackendUnavailable, CheckerBusy
from smartdiscover.auth.guard import Guard
from smartdiscover.config import Model, load
from smartdiscover.config.principal import Principal
from smartdiscover.web.autodiscover import AutodiscoverRealm
from smartdiscover.web.basic_auth import JITTER, BasicAuthResource
from smartdiscover.web.tree import build_resource_tree
from tests.helpers import DEMO_PASSWORD, edit, write_config
from tests.unit.test_web import (
    AUTODISCOVER_PATH,
    CHALLENGE,
    DEMO_USER,
    OUTLOOK_REQUEST,
    REALM,
    AuthFixture,
    Connection,
    RecordingTransport,
    Response,
    StubChecker,
    basic,
    http_request,
)

PASSWORD = DEMO_PASSWORD.encode()
EPSILON = 0.001
# Where every request of a L{Connection} comes from (its transport's peer).
SOURCE = RecordingTransport().getPeer().host


def guard_model(directory: str, **policy: Any) -> Model:
    """
    The minimal configuration with guard keys set in C{[auth]}.
    """
    lines = "".join(f"{key} = {value}\n" for key, value in policy.items())
    model = load(write_config(directory, edit("passwd_file = users.passwd\n",
                                              "passwd_file = users.passwd\n" + lines)))
    for key, value in policy.items():
        assert getattr(model.auth.guard, key) == value, (key, model.auth.guard)
    return model


class HeldChecker(StubChecker):
    """
    A backend whose every check waits for the test (C{self.held}).
    """

    def __init__(self) -> None:
        self.held: list[Deferred[Principal]] = []

        def later(credentials: Any) -> Deferred[Principal]:
            self.held.append(Deferred())
            return self.held[-1]

        super().__init__(later)


class DelayTestCase(SynchronousTestCase, AuthFixture):
    """
    Requests through the resource tree with a L{Guard} over the
    password-file checker (hashing synchronously, counted).
    """

    def setUp(self) -> None:
        self.model = self.load_model()
        self.delay = self.model.auth.guard.failure_delay
        self.assertGreater(self.delay, 0)
        self.events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_namespace", "").startswith("smartdiscover"):
                self.events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def guarded_tree(self, checker: Any = None, model: Model | None = None) -> IResource:
        """
        A fresh tree, guard and clock; C{checker} defaults to the password
        file's, whose hashes are recorded in C{self.hashed}.
        """
        model = model if model is not None else self.model
        self.clock = Clock()
        if checker is None:
            checker, self.hashed = self.passwd_checker(model)
        self.guard = Guard(checker, lambda: model, self.clock)
        return build_resource_tree(self.guard, lambda: model, lambda domain: None, REALM,
                                   clock=self.clock)

    def post(self, resource: IResource, *headers: bytes) -> Connection:
        connection = Connection(resource)
        connection.send(http_request(b"POST", AUTODISCOVER_PATH, headers, OUTLOOK_REQUEST))
        return connection

    def guard_check(self, username: str, password: bytes, source: str) -> None:
        """
        A failed check straight through the guard (to throttle or lock).
        """
        d = self.guard.requestAvatarId(BasicCredentials(username, password, source))
        self.failureResultOf(d, UnauthorizedLogin)

    def assertNothingWritten(self, connection: Connection) -> None:
        self.assertEqual(connection.transport.value(), b"")

    def assertDelayed401(self, connection: Connection, earliest: float,
                         latest: float) -> Response:
        """
        Nothing is written until C{earliest} seconds after the request
        arrived; the 401 is written by C{latest}.
        """
        self.assertNothingWritten(connection)
        self.clock.advance(earliest - EPSILON)
        self.assertNothingWritten(connection)
        self.clock.advance(latest - earliest + 2 * EPSILON)
        response = connection.response()
        self.assertEqual(response.code, 401)
        return response


class IdenticalFailureTests(DelayTestCase):
    """
    Every failed login gets the same 401, after the same minimum delay
    (SECURITY.md section 3.3, "Required" 1 and 3, table row 1).
    """

    def test_every_failure_identical_and_delayed(self) -> None:
        """
        Unknown user, wrong password, 73-byte and 1.5 kB passwords, bad
        Base64, missing colon, repeated wrong password, throttled network,
        locked account: nothing is written before C{failure_delay} has
        passed, then a 401 byte-identical (but Date) to the challenge sent
        at once to a request without credentials.  Each case does what it
        claims: one hash for unknown users and wrong passwords, none for the
        others; one failure log line each, without the password.
        """
        def throttle() -> None:
            for i in range(self.model.auth.guard.network_failures):
                self.guard_check(f"user{i}@example.test", b"guess",
                                 SOURCE.rpartition(".")[0] + f".{i + 2}")

        def lock() -> None:
            for i in range(self.model.auth.guard.account_failures):
                self.guard_check(DEMO_USER.decode(), b"guess-%d" % (i,), f"198.51.{i}.7")

        def remember() -> None:
            self.guard_check(DEMO_USER.decode(), b"stale-password", "10.0.0.1")

        def nothing() -> None:
            pass

        cases = [
            ("unknown user", basic(b"nobody@example.test", PASSWORD), nothing, 1),
            ("wrong password", basic(DEMO_USER, b"wrong-password"), nothing, 1),
            ("73-byte password", basic(DEMO_USER, b"p" * 73), nothing, 1),
            ("1.5 kB password", basic(DEMO_USER, b"p" * 1500), nothing, 0),
            ("bad Base64", b"Authorization: Basic !!!not-base64!!!", nothing, 0),
            ("missing colon", b"Authorization: Basic " + base64.b64encode(DEMO_USER),
             nothing, 0),
            ("repeated wrong password", basic(DEMO_USER, b"stale-password"), remember, 0),
            ("throttled network", basic(DEMO_USER, PASSWORD), throttle, 0),
            ("locked account", basic(DEMO_USER, PASSWORD), lock, 0),
        ]
        challenge = self.post(self.guarded_tree()).response()
        self.assertEqual(challenge.code, 401)
        self.assertEqual(challenge.header(b"www-authenticate"), [CHALLENGE])
        for label, header, prepare, hashes in cases:
            tree = self.guarded_tree()
            prepare()
            del self.hashed[:]
            since = len(self.events)
            connection = self.post(tree, header)
            self.assertEqual(connection.transport.value()[:12], b"", label)
            response = self.assertDelayed401(connection, self.delay,
                                             self.delay * (1 + JITTER))
            self.assertEqual(response.comparable(), challenge.comparable(), label)
            self.assertEqual(len(self.hashed), hashes, label)
            failures = [formatEvent(e) for e in self.events[since:]
                        if "authentication failed" in formatEvent(e)]
            self.assertEqual(len(failures), 1, (label, failures))
            for event in self.events[since:]:
                text = formatEvent(event) + repr(event)
                self.assertNotIn(DEMO_PASSWORD, text, label)
                self.assertNotIn(header.partition(b"Basic ")[2].decode(), text, label)

    def test_no_credentials_at_once(self) -> None:
        """
        A request without C{Authorization} (a client's first try) gets its
        challenge at once, with no delayed call left behind.
        """
        connection = self.post(self.guarded_tree())
        self.assertEqual(connection.response().code, 401)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_success_not_delayed(self) -> None:
        """
        The right password is answered at once.
        """
        connection = self.post(self.guarded_tree(), basic(DEMO_USER, PASSWORD))
        self.assertEqual(connection.response().code, 200)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class DelayTimingTests(DelayTestCase):
    """
    The delay's floor, jitter and starting point (SECURITY.md section 3.3,
    "Required" 3: a non-blocking delay with a fixed floor plus jitter).
    """

    def direct(self, checker: Any, delay: float, fraction: float) -> BasicAuthResource:
        """
        The authentication resource alone, with a chosen delay and jitter.
        """
        self.clock = Clock()
        return BasicAuthResource(Portal(AutodiscoverRealm(lambda: self.model), [checker]),
                                 REALM, lambda: delay, self.clock,
                                 random_fraction=lambda: fraction)

    def test_floor_exact(self) -> None:
        """
        With no jitter the 401 is written exactly C{failure_delay} after
        the request arrived.
        """
        checker, _ = self.passwd_checker(self.model)
        for header in (basic(DEMO_USER, b"wrong"), b"Authorization: Basic !!!"):
            connection = self.post(self.direct(checker, 2.0, 0.0), header)
            self.assertDelayed401(connection, 2.0, 2.0)

    def test_jitter_bounded(self) -> None:
        """
        The largest jitter adds C{JITTER} times the delay, and no more.
        """
        checker, _ = self.passwd_checker(self.model)
        connection = self.post(self.direct(checker, 2.0, 1.0), basic(DEMO_USER, b"wrong"))
        self.assertDelayed401(connection, 2.0 * (1 + JITTER), 2.0 * (1 + JITTER))

    def test_counted_from_arrival(self) -> None:
        """
        A check taking 0.4 s of a 1 s delay: the 401 leaves 1 s after the
        request arrived, not 1.4 s.  A check taking longer than the delay:
        the 401 leaves as soon as it fails.
        """
        checker = HeldChecker()
        connection = self.post(self.direct(checker, 1.0, 0.0), basic(DEMO_USER, b"wrong"))
        self.clock.advance(0.4)
        checker.held[0].errback(UnauthorizedLogin())
        self.assertNothingWritten(connection)
        self.clock.advance(0.6 - EPSILON)
        self.assertNothingWritten(connection)
        self.clock.advance(2 * EPSILON)
        self.assertEqual(connection.response().code, 401)

        checker = HeldChecker()
        connection = self.post(self.direct(checker, 1.0, 0.0), basic(DEMO_USER, b"wrong"))
        self.clock.advance(1.5)
        self.assertNothingWritten(connection)
        checker.held[0].errback(UnauthorizedLogin())
        self.clock.advance(0)  # the next turn of the reactor
        self.assertEqual(connection.response().code, 401)

    def test_delay_from_configuration(self) -> None:
        """
        The tree reads C{failure_delay} from the model in force: 2.5 s
        delays the 401 by 2.5 s (plus jitter), 0 sends it at once.
        """
        model = guard_model(self.mktemp(), failure_delay=2.5)
        connection = self.post(self.guarded_tree(model=model), basic(DEMO_USER, b"wrong"))
        self.assertDelayed401(connection, 2.5, 2.5 * (1 + JITTER))

        model = guard_model(self.mktemp(), failure_delay=0.0)
        connection = self.post(self.guarded_tree(model=model), basic(DEMO_USER, b"wrong"))
        self.assertEqual(connection.response().code, 401)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class DisconnectTests(DelayTestCase):
    """
    A client that goes away during the delay.
    """

    def test_disconnect_during_delay(self) -> None:
        """
        The client disconnects while its 401 waits (wrong password, bad
        Base64): the delayed call is cancelled, nothing is ever written and
        no error is logged.
        """
        for header in (basic(DEMO_USER, b"wrong"), b"Authorization: Basic !!!"):
            connection = self.post(self.guarded_tree(), header)
            self.assertEqual(len(self.clock.getDelayedCalls()), 1, header)
            connection.lose()
            self.assertEqual(self.clock.getDelayedCalls(), [], header)
            self.clock.advance(10 * self.delay)
            self.assertNothingWritten(connection)
        self.assertEqual(self.flushLoggedErrors(), [])


class UnavailableTests(DelayTestCase):
    """
    A check that cannot be made now: 503 with Retry-After at once, never a
    delayed 401 (SECURITY.md sections 8 and 9: "a fast 503 + Retry-After").
    """

    def assertFast503(self, connection: Connection) -> None:
        response = connection.response()
        self.assertEqual(response.code, 503)
        self.assertEqual(response.header(b"retry-after"), [b"%d" % (CheckerBusy.retry_after,)])
        self.assertEqual(response.header(b"www-authenticate"), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_checker_busy(self) -> None:
        """
        With C{max_pending} checks running, another login gets 503 at once;
        the running one still gets its answer.
        """
        model = guard_model(self.mktemp(), max_pending=1)
        checker = HeldChecker()
        tree = self.guarded_tree(checker, model)
        first = self.post(tree, basic(DEMO_USER, PASSWORD))
        self.assertNothingWritten(first)
        self.assertFast503(self.post(tree, basic(b"other@example.test", b"other")))
        self.assertEqual(len(checker.held), 1)
        checker.held[0].callback(Principal(DEMO_USER.decode(), "Demo User"))
        self.assertEqual(first.response().code, 200)

    def test_backend_unavailable(self) -> None:
        """
        A user store that cannot be reached: 503 at once, for any password.
        """
        def down(credentials: Any) -> Any:
            raise BackendUnavailable()

        tree = self.guarded_tree(StubChecker(down))
        for password in (PASSWORD, b"wrong"):
            self.assertFast503(self.post(tree, basic(DEMO_USER, password)))
