"""
Tests for L{smartdiscover.auth.guard.Guard} and its failure counters,
L{smartdiscover.auth.penalties.Penalties} (SECURITY.md sections 3.3, 3.4
and 8; issue 6, sections 2 and 3).

The guard wraps a fake backend that counts its calls and answers at once,
or with a L{Deferred} the test fires; time is a L{Clock}.  No reactor, no
sockets, no hashing.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from smartdiscover.auth.credentials import BasicCredentials, IBasicCredentials
from smartdiscover.auth.errors import BackendUnavailable, CheckerBusy, Unavailable
from smartdiscover.auth.guard import FAMILIAR_REFRESH, Guard
from smartdiscover.auth.penalties import Penalties
from smartdiscover.config import Model, load
from smartdiscover.config.model import GuardPolicy
from smartdiscover.config.principal import Principal
from tests.helpers import edit, write_config

USER = "demo@example.test"
PASSWORD = b"correct horse battery staple"
OWNER = Principal(USER, "Demo User")
ATTACKER = "198.51.100.7"  # an unfamiliar network
HOME = "192.0.2.10"  # the owner's network, once it has logged in from there
ELSEWHERE = "203.0.113.5"


def guarded_model(directory: str, **auth: Any) -> Model:
    """
    The minimal configuration with extra C{[auth]} keys (the guard's policy
    among them), loaded through L{smartdiscover.config.load}.
    """
    lines = "".join(f"{key} = {value}\n" for key, value in auth.items())
    ini = edit("passwd_file = users.passwd\n", "passwd_file = users.passwd\n" + lines)
    model = load(write_config(directory, ini))
    for key, value in auth.items():
        if key in GuardPolicy.__dataclass_fields__:
            # The key really reached the policy: no test runs on defaults
            # it believes it changed.
            assert getattr(model.auth.guard, key) == value, (key, model.auth.guard)
    return model


@implementer(ICredentialsChecker)
class FakeBackend:
    """
    A user store that knows one password per user and counts every check.

    With L{hold}, checks wait until the test fires them; C{error} makes
    every check fail with that exception, C{raised} makes it raise it.
    """

    credentialInterfaces = (IBasicCredentials,)

    def __init__(self) -> None:
        self.passwords = {USER: PASSWORD}
        self.calls: list[tuple[str, str]] = []
        self.held: list[tuple[Any, Deferred[Principal]]] | None = None
        self.error: Exception | None = None
        self.raised: Exception | None = None

    def hold(self) -> None:
        self.held = []

    def requestAvatarId(self, credentials: Any) -> Deferred[Principal]:
        self.calls.append((credentials.username, credentials.source))
        if self.raised is not None:
            raise self.raised
        if self.held is not None:
            d: Deferred[Principal] = Deferred()
            self.held.append((credentials, d))
            return d
        if self.error is not None:
            return fail(self.error)
        return self.answer(credentials)

    def answer(self, credentials: Any) -> Deferred[Principal]:
        expected = self.passwords.get(credentials.username.casefold())
        if expected is not None and hmac.compare_digest(expected, credentials.password):
            return succeed(OWNER if credentials.username.casefold() == USER
                           else Principal(credentials.username.casefold()))
        return fail(UnauthorizedLogin())

    def release(self, index: int = 0) -> None:
        """
        Answer the C{index}th held check as the store would.
        """
        assert self.held is not None
        credentials, d = self.held.pop(index)
        self.answer(credentials).chainDeferred(d)


class GuardTestCase(SynchronousTestCase):
    """
    A L{Guard} over a L{FakeBackend}, on a L{Clock}.
    """

    def make_guard(self, **auth: Any) -> Guard:
        self.model = guarded_model(self.mktemp(), **auth)
        self.policy = self.model.auth.guard
        self.clock = Clock()
        self.backend = FakeBackend()
        self.guard = Guard(self.backend, lambda: self.model, self.clock)
        return self.guard

    def check(self, username: str = USER, password: bytes = PASSWORD,
              source: str = ATTACKER) -> Deferred[Principal]:
        return self.guard.requestAvatarId(BasicCredentials(username, password, source))

    def assertRefused(self, d: Deferred[Any]) -> None:
        self.failureResultOf(d, UnauthorizedLogin)

    def assertCalls(self, expected: int) -> None:
        self.assertEqual(len(self.backend.calls), expected, self.backend.calls)

    def capture_log(self) -> list[dict[str, Any]]:
        """
        Every event SmartDiscover logs from now until the test ends.
        """
        events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_namespace", "").startswith("smartdiscover"):
                events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        return events


def event_text(event: dict[str, Any]) -> str:
    """
    Everything of an event that could reach a log file.
    """
    text = formatEvent(event) + "\n" + repr(event)
    failure = event.get("log_failure")
    if failure is not None:
        text += "\n" + failure.getTraceback()
    return text


# -- Penalties --------------------------------------------------------------


class PenaltiesTests(SynchronousTestCase):
    """
    L{Penalties}: decaying failure counters with doubling lockouts in a
    bounded table (SECURITY.md section 3.4, "Required" 1 and 2).
    """

    THRESHOLD = 5
    WINDOW = 600.0
    LOCKOUT = 60.0
    MAX_LOCKOUT = 1800.0

    def fail_at(self, penalties: Penalties, key: str, now: float,
                threshold: int | None = None) -> bool:
        return penalties.fail(key, now, self.THRESHOLD if threshold is None else threshold,
                              self.WINDOW, self.LOCKOUT, self.MAX_LOCKOUT)

    def test_threshold_locks_for_lockout(self) -> None:
        """
        The C{threshold}-th failure locks the key for C{lockout} seconds,
        not before and not longer; other keys are unaffected.
        """
        penalties = Penalties()
        for _ in range(self.THRESHOLD - 1):
            self.assertFalse(self.fail_at(penalties, "net", 0.0))
        self.assertFalse(penalties.locked("net", 0.0))
        self.assertTrue(self.fail_at(penalties, "net", 0.0))
        self.assertTrue(penalties.locked("net", 0.0))
        self.assertTrue(penalties.locked("net", self.LOCKOUT - 0.01))
        self.assertFalse(penalties.locked("net", self.LOCKOUT))
        self.assertFalse(penalties.locked("other", 0.0))

    def test_quick_succession_locks_at_threshold(self) -> None:
        """
        C{threshold} failures 0.1 s apart -- far inside the window -- lock
        at the C{threshold}-th, like failures at one instant: the tiny decay
        between them must not buy an attacker an extra attempt per lock
        (SECURITY.md section 3.4: "<= 5 attempts per /24 per 10 min before
        blocking").
        """
        penalties = Penalties()
        results = [self.fail_at(penalties, "net", i * 0.1) for i in range(self.THRESHOLD)]
        self.assertEqual(results, [False] * (self.THRESHOLD - 1) + [True])
        self.assertTrue(penalties.locked("net", self.THRESHOLD * 0.1))

    def test_decay(self) -> None:
        """
        The count leaks away at C{threshold / window} per second: one
        failure is forgiven every C{window / threshold} seconds, and after a
        whole quiet window the count starts again from nothing.
        """
        penalties = Penalties()
        per_failure = self.WINDOW / self.THRESHOLD
        for _ in range(self.THRESHOLD - 1):
            self.fail_at(penalties, "net", 0.0)
        # One failure has leaked away: this one brings the count back to
        # threshold - 1, the next one reaches the threshold.
        self.assertFalse(self.fail_at(penalties, "net", per_failure))
        self.assertTrue(self.fail_at(penalties, "net", per_failure))

        penalties = Penalties()
        for _ in range(self.THRESHOLD - 1):
            self.fail_at(penalties, "net", 0.0)
        for _ in range(self.THRESHOLD - 1):
            self.assertFalse(self.fail_at(penalties, "net", self.WINDOW))
        self.assertTrue(self.fail_at(penalties, "net", self.WINDOW))

    def test_lockout_doubles_up_to_max(self) -> None:
        """
        Each lock that follows the last one closely lasts twice as long:
        60, 120, 240, 480, 960 s, then C{max_lockout} (1800 s) and no more
        (SECURITY.md section 3.4: "Backoff 1 min, doubling, capped at
        15-30 min").
        """
        penalties = Penalties()
        now = 0.0
        for expected in (60.0, 120.0, 240.0, 480.0, 960.0, 1800.0, 1800.0, 1800.0):
            self.assertTrue(self.fail_at(penalties, "net", now, threshold=1))
            self.assertTrue(penalties.locked("net", now + expected - 0.01), expected)
            self.assertFalse(penalties.locked("net", now + expected), expected)
            now += expected

    def test_lockout_resets_after_quiet_period(self) -> None:
        """
        After more than C{max_lockout} without a lock, the next lock is the
        first, short one again.
        """
        penalties = Penalties()
        self.fail_at(penalties, "net", 0.0, threshold=1)  # 60 s
        self.fail_at(penalties, "net", 60.0, threshold=1)  # 120 s, until 180
        now = 180.0 + self.MAX_LOCKOUT + 1
        self.assertTrue(self.fail_at(penalties, "net", now, threshold=1))
        self.assertTrue(penalties.locked("net", now + self.LOCKOUT - 0.01))
        self.assertFalse(penalties.locked("net", now + self.LOCKOUT))

    def test_bounded_lru(self) -> None:
        """
        The table never holds more than its size; the least recently
        failed key is forgotten first (SECURITY.md section 3.4: "all tables
        bounded LRU").
        """
        penalties = Penalties(3)
        for key in ("a", "b", "c"):
            self.fail_at(penalties, key, 0.0, threshold=1)
        self.fail_at(penalties, "a", 0.0, threshold=1)  # touched again
        self.fail_at(penalties, "d", 0.0, threshold=1)
        self.assertEqual(len(penalties), 3)
        self.assertFalse(penalties.locked("b", 1.0))
        for key in ("a", "c", "d"):
            self.assertTrue(penalties.locked(key, 1.0), key)
        for i in range(1000):
            self.fail_at(penalties, f"k{i}", 2.0)
        self.assertEqual(len(penalties), 3)

    def test_clear(self) -> None:
        """
        L{Penalties.clear} forgets a key's count and lock.
        """
        penalties = Penalties()
        self.fail_at(penalties, "account", 0.0, threshold=1)
        penalties.clear("account")
        self.assertFalse(penalties.locked("account", 0.0))
        self.assertEqual(len(penalties), 0)
        penalties.clear("never-seen")


# -- throttling and locks -----------------------------------------------------


class GuardInterfaceTests(GuardTestCase):
    """
    The guard is a twisted.cred checker like the backends it wraps.
    """

    def test_credentials_checker(self) -> None:
        """
        L{Guard} provides L{ICredentialsChecker} for L{IBasicCredentials}
        and passes a right password through to the backend's principal.
        """
        guard = self.make_guard()
        self.assertTrue(verifyObject(ICredentialsChecker, guard))
        self.assertEqual(tuple(guard.credentialInterfaces), (IBasicCredentials,))
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(1)
        self.assertRefused(self.check(password=b"wrong"))
        self.assertCalls(2)


class AccountLockTests(GuardTestCase):
    """
    Per-account soft locks with separate counters for familiar and
    unfamiliar networks, and remembered wrong passwords (SECURITY.md
    section 3.4, table rows 1-3).
    """

    def test_locked_from_the_eleventh(self) -> None:
        """
        One IP, 12 wrong passwords for one user from an unfamiliar network:
        the first 10 reach the backend, the 11th and 12th do not; the right
        password during the lock fails without a backend call, even just
        before the lock ends; one second after the lock it succeeds.  The
        network limit is raised so that only the account counter acts, and
        the account threshold is the table's 10 (the default is 6, which
        keeps a patient many-network attacker within 10 checks per 30
        minutes; see test_account_bound_per_half_hour).
        """
        self.make_guard(network_failures=1000, account_failures=10)
        self.assertEqual(self.policy.account_failures, 10)
        for i in range(12):
            self.assertRefused(self.check(password=b"wrong-%d" % (i,)))
            self.assertCalls(min(i + 1, 10))
        self.assertRefused(self.check())
        self.assertCalls(10)
        self.clock.advance(self.policy.lockout - 1)
        self.assertRefused(self.check())
        self.assertCalls(10)
        self.clock.advance(2)  # lock + 1 s
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(11)

    def test_remote_store_checks_repeats_again(self) -> None:
        """
        With a directory or mail server (which may change a password behind
        our back) a remembered wrong password is checked again, so a
        password just set there works at once; the repeat still counts once.
        """
        self.make_guard(network_failures=1000)
        self.guard = Guard(self.backend, lambda: self.model, self.clock, local_store=False)
        for _ in range(20):
            self.assertRefused(self.check(password=b"stale-password"))
        self.assertCalls(20)
        self.assertEqual(self.successResultOf(self.check()), OWNER)

    def test_lock_covers_every_unfamiliar_network(self) -> None:
        """
        The unfamiliar counter belongs to the account, not to the attacker's
        network: once locked, the right password from another unfamiliar
        network fails too, without a backend call.
        """
        self.make_guard(network_failures=1000)
        for i in range(self.policy.account_failures):
            self.assertRefused(self.check(password=b"wrong-%d" % (i,)))
        self.assertRefused(self.check(source=ELSEWHERE))
        self.assertCalls(self.policy.account_failures)

    def test_account_bound_per_half_hour(self) -> None:
        """
        SECURITY.md 3.4 target: at most 10 verifications per account per 30
        minutes from unfamiliar sources, even for an attacker who changes
        network for every guess and waits out each lock.
        """
        self.make_guard()
        networks = iter(range(1, 100_000))
        for _ in range(30 * 60 * 2):  # a guess every 0.5 s for 30 minutes
            address = next(networks)
            self.assertRefused(self.check(password=b"guess-%d" % (address,),
                                          source=f"10.{address // 256 % 256}.{address % 256}.1"))
            self.clock.advance(0.5)
        self.assertLessEqual(len(self.backend.calls), 10)

    def test_same_wrong_password_counted_once(self) -> None:
        """
        The same wrong password 50 times (a phone with a stale password)
        costs one backend call and counts as one failure: nine more distinct
        wrong passwords (ten failures if the repeats counted once) still do
        not lock, and the right password then succeeds.
        """
        self.make_guard(network_failures=1000)
        for _ in range(50):
            self.assertRefused(self.check(password=b"stale-password"))
        self.assertCalls(1)
        for i in range(self.policy.account_failures - 2):
            self.assertRefused(self.check(password=b"wrong-%d" % (i,)))
        self.assertCalls(self.policy.account_failures - 1)
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(self.policy.account_failures)

    def test_owner_from_familiar_network_while_locked(self) -> None:
        """
        The owner logged in from home before; an attacker elsewhere locks
        the unfamiliar counter (the right password from the attacker's
        network now fails without a backend call); the owner, from any
        address of the home network, still gets in (SECURITY.md section
        3.4: "0 owner lockouts caused by a remote attacker").  The cache is
        off so that every success is a real check.
        """
        self.make_guard(network_failures=1000, cache_ttl=0)
        self.assertEqual(self.successResultOf(self.check(source=HOME)), OWNER)
        for i in range(self.policy.account_failures):
            self.assertRefused(self.check(password=b"wrong-%d" % (i,)))
        calls = len(self.backend.calls)
        self.assertRefused(self.check())
        self.assertCalls(calls)
        self.assertEqual(self.successResultOf(self.check(source=HOME)), OWNER)
        self.assertEqual(self.successResultOf(self.check(source="192.0.2.99")), OWNER)
        self.assertCalls(calls + 2)


class FamiliarPlaceTests(GuardTestCase):
    """
    Where an account logged in before, failures count per address (IPv4)
    or /64 (IPv6), and elsewhere in its network apart from that (issue 14,
    sections 2 and 3).
    """

    NEIGHBOUR = "192.0.2.77"  # in the owner's /24, not the owner's address

    def wrong_guesses(self, count: int, source: str, start: int = 0) -> None:
        for i in range(start, start + count):
            self.assertRefused(self.check(password=b"guess-%d" % (i,), source=source))

    def test_neighbour_cannot_lock_the_owner_out(self) -> None:
        """
        The owner logged in from HOME; someone else in HOME's /24 guesses
        until locked.  The neighbour is then refused without a check, even
        with the right password, while the owner at HOME still gets in.
        """
        self.make_guard(cache_ttl=0)
        self.assertEqual(self.successResultOf(self.check(source=HOME)), OWNER)
        self.wrong_guesses(3 * self.policy.account_failures, self.NEIGHBOUR)
        self.assertCalls(1 + self.policy.account_failures)
        self.assertRefused(self.check(source=self.NEIGHBOUR))
        self.assertCalls(1 + self.policy.account_failures)
        self.assertEqual(self.successResultOf(self.check(source=HOME)), OWNER)

    def test_neighbour_ipv6(self) -> None:
        """
        For IPv6 the owner's place is its /64 (temporary addresses change
        within it): another address of the /64 is the owner, another /64 of
        the same /48 is not.
        """
        self.make_guard(cache_ttl=0)
        self.assertEqual(self.successResultOf(self.check(source="2001:db8:1:2::10")), OWNER)
        self.wrong_guesses(3 * self.policy.account_failures, "2001:db8:1:3::66")
        self.assertEqual(self.successResultOf(self.check(source="2001:db8:1:2:a:b:c:d")), OWNER)

    def test_network_counter_is_not_the_unfamiliar_one(self) -> None:
        """
        A spray elsewhere that locks the unfamiliar counter leaves the
        owner's network open: the owner from a new address there (a new
        DHCP lease) gets in.
        """
        self.make_guard(cache_ttl=0, network_failures=1000)
        self.successResultOf(self.check(source=HOME))
        self.wrong_guesses(self.policy.account_failures, ATTACKER)
        self.assertRefused(self.check(source=ELSEWHERE))
        self.assertEqual(self.successResultOf(self.check(source="192.0.2.200")), OWNER)

    def test_neighbour_bound_per_half_hour(self) -> None:
        """
        Someone in the owner's network (and, with shared NAT, someone at the
        owner's own address) gets no more checks than an attacker anywhere
        else: at most 10 per account in 30 minutes (SECURITY.md 3.4).
        """
        for source in (self.NEIGHBOUR, HOME):
            self.make_guard(cache_ttl=0)
            self.successResultOf(self.check(source=HOME))
            for i in range(30 * 60 * 2):  # a guess every 0.5 s for 30 minutes
                self.assertRefused(self.check(password=b"guess-%d" % (i,), source=source))
                self.clock.advance(0.5)
            self.assertLessEqual(len(self.backend.calls) - 1, 10, source)

    def test_checked_success_clears_only_its_address(self) -> None:
        """
        The owner's own typos at HOME, then the right password: the owner's
        counter there starts afresh, the neighbour's does not.
        """
        self.make_guard(cache_ttl=0)
        self.successResultOf(self.check(source=HOME))
        failures = self.policy.account_failures - 1
        self.wrong_guesses(failures, HOME)
        self.wrong_guesses(failures, self.NEIGHBOUR, start=100)
        self.successResultOf(self.check(source=HOME))
        self.wrong_guesses(failures, HOME, start=200)
        self.assertEqual(self.successResultOf(self.check(source=HOME)), OWNER)
        self.wrong_guesses(1, self.NEIGHBOUR, start=300)
        calls = len(self.backend.calls)
        self.assertRefused(self.check(source=self.NEIGHBOUR))
        self.assertCalls(calls)

    def test_cached_success_makes_its_place_familiar(self) -> None:
        """
        A phone verified at HOME, then answered from the cache on a new
        network (ELSEWHERE): that network becomes familiar, so a spray that
        locks the account's unfamiliar counter does not lock the phone out
        there.  The cache answers without a check throughout.
        """
        self.make_guard(cache_ttl=3600.0, network_failures=1000)
        self.successResultOf(self.check(source=HOME))
        self.successResultOf(self.check(source=ELSEWHERE))
        self.assertCalls(1)
        self.wrong_guesses(self.policy.account_failures, ATTACKER)
        self.assertRefused(self.check(source="198.51.100.99"))
        self.assertEqual(self.successResultOf(self.check(source=ELSEWHERE)), OWNER)
        self.assertCalls(1 + self.policy.account_failures)

    def test_cached_success_told_once_per_refresh(self) -> None:
        """
        A cached success is told to other processes when it makes its place
        familiar, then at most once per C{FAMILIAR_REFRESH}, not per request.
        """
        guard = self.make_guard(cache_ttl=3 * FAMILIAR_REFRESH)
        heard: list[Any] = []
        guard.on_event(heard.append)
        self.successResultOf(self.check(source=HOME))
        for _ in range(5):
            self.successResultOf(self.check(source=ELSEWHERE))
            self.clock.advance(1)
        self.clock.advance(FAMILIAR_REFRESH)
        self.successResultOf(self.check(source=ELSEWHERE))
        self.successResultOf(self.check(source=ELSEWHERE))
        self.assertEqual(heard, [("verified", HOME, USER, ""), ("seen", ELSEWHERE, USER, ""),
                                 ("seen", ELSEWHERE, USER, "")])

    def test_told_neighbour_failures_count_for_the_network(self) -> None:
        """
        A failure another process counted against the owner's network counts
        against that network here, not against the owner's address.
        """
        guard = self.make_guard(cache_ttl=0)
        self.successResultOf(self.check(source=HOME))
        for n in range(self.policy.account_failures):
            guard.apply(("failed", self.NEIGHBOUR, USER, "network"))
        self.assertRefused(self.check(source="192.0.2.78"))
        self.assertEqual(self.successResultOf(self.check(source=HOME)), OWNER)


class NetworkThrottleTests(GuardTestCase):
    """
    Per-network throttling: IPv4 per /24, IPv6 per /64 (SECURITY.md
    section 3.4, table row 4, "Required" 1 and 3).
    """

    def spray(self, sources: list[str]) -> None:
        """
        One password for each of 200 user names, the i-th from
        C{sources[i % len(sources)]}; every attempt fails.
        """
        for i in range(200):
            self.assertRefused(self.check(f"user{i}@example.test", b"Winter2026!",
                                          sources[i % len(sources)]))

    def test_spray_blocks_ipv4_24(self) -> None:
        """
        200 user names x 1 password from addresses of one /24 (at one
        instant: the aggregation is under test, not the decay): the network
        is blocked after C{network_failures} checks; an IPv4-mapped address
        of that /24 is blocked too; another /24 and the owner at home are
        unaffected.  After the lock the network may try again.
        """
        self.make_guard()
        self.spray([f"203.0.113.{host}" for host in range(1, 255)])
        self.assertCalls(self.policy.network_failures)
        self.assertRefused(self.check("other@example.test", b"x", "::ffff:203.0.113.200"))
        self.assertCalls(self.policy.network_failures)
        self.assertRefused(self.check("other@example.test", b"x", "203.0.114.1"))
        self.assertCalls(self.policy.network_failures + 1)
        self.assertEqual(self.successResultOf(self.check(source=HOME)), OWNER)
        self.clock.advance(self.policy.lockout + 1)
        self.assertRefused(self.check("other@example.test", b"y", "203.0.113.9"))
        self.assertCalls(self.policy.network_failures + 3)

    def test_spray_blocks_ipv6_64(self) -> None:
        """
        The same spray from addresses spread over one IPv6 /64: blocked
        after C{network_failures} checks; a neighbouring /64 (same /48 and
        /56) is unaffected.
        """
        self.make_guard()
        self.spray([f"2001:db8:1:2:{i:x}:{i * 7:x}::{i + 1:x}" for i in range(200)])
        self.assertCalls(self.policy.network_failures)
        self.assertRefused(self.check("other@example.test", b"x", "2001:DB8:1:2::1"))
        self.assertCalls(self.policy.network_failures)
        self.assertRefused(self.check("other@example.test", b"x", "2001:db8:1:3::1"))
        self.assertCalls(self.policy.network_failures + 1)


def allowed_verifications(policy: GuardPolicy, duration: float) -> int:
    """
    The backend checks that one network trying without pause may cause in
    C{duration} seconds under C{policy}: C{network_failures} for each lock
    period that starts within it, the periods doubling from C{lockout} up
    to C{max_lockout}.
    """
    count, start, locks = 0, 0.0, 0
    while start < duration:
        count += policy.network_failures
        start += min(policy.max_lockout, policy.lockout * 2 ** locks)
        locks += 1
    return count


class PolicyBoundTests(GuardTestCase):
    """
    The attacker's verification rate stays within the configured policy
    (issue 6, section 3: "a test that asserts the policy bound with a fake
    clock"; SECURITY.md section 3.4, "Target").
    """

    HOUR = 3600.0
    INTERVAL = 0.5  # far above the policy's rate; any faster gives the same bound

    def hammer(self) -> int:
        """
        A new user name and wrong password every C{INTERVAL} seconds from
        one address for an hour (a spray: no account lock ever helps); the
        number of backend checks it caused.
        """
        self.make_guard()
        attempts = int(self.HOUR / self.INTERVAL)
        for i in range(attempts):
            self.assertRefused(self.check(f"user{i}@example.test", b"guess-%d" % (i,),
                                          ATTACKER))
            self.clock.advance(self.INTERVAL)
        return len(self.backend.calls)

    def test_defaults_bound_is_small(self) -> None:
        """
        The default policy allows 5 checks per lock period, periods of 60,
        120, 240, 480, 960 and 1800 s: 30 checks in the first hour.
        """
        bound = allowed_verifications(GuardPolicy(), self.HOUR)
        self.assertEqual(bound, 30)
        self.assertEqual(allowed_verifications(
            guarded_model(self.mktemp()).auth.guard, self.HOUR), bound)

    def test_spray_from_one_address(self) -> None:
        """
        A new user name and password twice a second for 60 simulated
        minutes (7200 attempts): at most the policy's bound of backend
        checks (30 with the defaults), at least the first period's.
        """
        calls = self.hammer()
        bound = allowed_verifications(self.policy, self.HOUR)
        self.assertLessEqual(bound, 30)
        self.assertGreaterEqual(calls, self.policy.network_failures)
        self.assertLessEqual(calls, bound)


class SharedEventsTests(GuardTestCase):
    """
    Events between processes (C{[server] workers}): what a guard tells
    others, and what it counts when told.
    """

    def test_tells_counted_failures_and_successes(self) -> None:
        """
        A counted failure and a success are told; a repeated wrong password
        (counted once) and a refusal without a check are not.
        """
        guard = self.make_guard(network_failures=2)
        heard: list[Any] = []
        guard.on_event(heard.append)
        self.assertRefused(self.check(password=b"guess"))
        self.assertRefused(self.check(password=b"guess"))  # repeated: not counted
        self.successResultOf(self.check(source=HOME))
        self.assertRefused(self.check(password=b"other guess"))
        self.assertRefused(self.check())  # the network is now locked
        self.assertEqual([event[0] for event in heard], ["failed", "verified", "failed"])
        self.assertEqual(heard[0], ("failed", ATTACKER, USER, ""))

    def test_told_failures_lock_here(self) -> None:
        """
        Failures another process saw count here: enough of them lock the
        network without a check, and nothing is told back.
        """
        guard = self.make_guard()
        heard: list[Any] = []
        guard.on_event(heard.append)
        for n in range(self.policy.network_failures):
            guard.apply(("failed", "198.51.100.9", f"user{n}@example.test", ""))
        self.assertRefused(self.check())
        self.assertCalls(0)
        self.assertEqual(heard, [])

    def test_told_success_makes_a_network_familiar(self) -> None:
        """
        A success another process saw makes its network familiar here:
        the owner from there passes a lock of that network.
        """
        guard = self.make_guard()
        for n in range(self.policy.network_failures):
            guard.apply(("failed", ATTACKER, f"user{n}@example.test", ""))
        self.assertRefused(self.check())
        guard.apply(("verified", ATTACKER, USER, ""))
        self.assertEqual(self.successResultOf(self.check()), OWNER)


# -- the success cache ----------------------------------------------------------


class CacheTests(GuardTestCase):
    """
    Successful checks are cached for C{cache_ttl} under a keyed hash of
    the credentials; positive only; void once the stored hash changes
    (SECURITY.md section 8, "Auth cache").
    """

    def test_success_cached_until_ttl(self) -> None:
        """
        A second identical check within C{cache_ttl} costs no backend call
        and gives the same principal; once C{cache_ttl} has passed, the
        backend is asked again.
        """
        self.make_guard(cache_ttl=120.0)
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(1)
        self.clock.advance(119)
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(1)
        self.clock.advance(2)
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(2)

    def test_ttl_zero_disables(self) -> None:
        """
        With C{cache_ttl = 0} every check reaches the backend.
        """
        self.make_guard(cache_ttl=0)
        for _ in range(3):
            self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(3)

    def test_other_password_not_a_hit(self) -> None:
        """
        A cached success does not answer for another password: that one is
        checked, and fails.
        """
        self.make_guard()
        self.successResultOf(self.check())
        self.assertRefused(self.check(password=PASSWORD + b"!"))
        self.assertRefused(self.check(password=PASSWORD[:-1]))
        self.assertCalls(3)

    def test_flush(self) -> None:
        """
        L{Guard.flush} (called on every reload) drops cached successes and
        remembered wrong passwords: both are checked again.
        """
        self.make_guard()
        self.successResultOf(self.check())
        self.assertRefused(self.check(password=b"stale"))
        self.successResultOf(self.check())
        self.assertRefused(self.check(password=b"stale"))
        self.assertCalls(2)
        self.guard.flush()
        self.successResultOf(self.check())
        self.assertCalls(3)
        self.assertRefused(self.check(password=b"stale"))
        self.assertCalls(4)

    def test_changed_password_after_flush(self) -> None:
        """
        A password change plus reload: the old password is rejected at once
        and the new one accepted (SECURITY.md section 8, table row 2).
        """
        self.make_guard()
        self.successResultOf(self.check())
        self.assertRefused(self.check(password=b"new-password"))
        self.backend.passwords[USER] = b"new-password"
        self.guard.flush()
        self.assertRefused(self.check())
        self.assertEqual(self.successResultOf(self.check(password=b"new-password")), OWNER)

    def with_stored_hash(self, password_hash: bytes) -> None:
        """
        The password file now holds C{password_hash} for the owner.
        """
        user = replace(self.model.users[USER], password_hash=password_hash)
        self.model = replace(self.model, users=MappingProxyType({USER: user}))

    def test_reload_keeps_what_an_unchanged_file_vouches_for(self) -> None:
        """
        With the password file, a reload that leaves the owner's stored hash
        alone costs no verification: the cached success and the remembered
        wrong password still hold.
        """
        self.make_guard()
        self.successResultOf(self.check())
        self.assertRefused(self.check(password=b"stale"))
        self.assertCalls(2)
        self.model = replace(self.model)  # a reload of the same file
        self.guard.reloaded()
        self.successResultOf(self.check())
        self.assertRefused(self.check(password=b"stale"))
        self.assertCalls(2)

    def test_changed_stored_hash_voids_remembered_results(self) -> None:
        """
        Once the owner's stored hash changes, neither the cached success nor
        the remembered wrong password answers: both are checked again, even
        when the change lands while a check runs.
        """
        self.make_guard()
        self.successResultOf(self.check())
        self.assertRefused(self.check(password=b"stale"))
        self.backend.passwords[USER] = b"stale"
        self.with_stored_hash(b"$2b$04$" + b"x" * 53)
        self.guard.reloaded()
        self.assertRefused(self.check())
        self.successResultOf(self.check(password=b"stale"))
        self.assertCalls(4)

    def test_reload_flushes_for_other_backends(self) -> None:
        """
        A directory or mail server may change passwords behind our back:
        there, every reload drops what was remembered.
        """
        self.make_guard()
        self.guard = Guard(self.backend, lambda: self.model, self.clock, local_store=False)
        self.successResultOf(self.check())
        self.successResultOf(self.check())
        self.assertCalls(1)
        self.guard.reloaded()
        self.successResultOf(self.check())
        self.assertCalls(2)

    def test_keys_are_keyed_hashes(self) -> None:
        """
        The cache (and the table of wrong passwords) holds SHA-256-sized
        keyed hashes: no password bytes in keys or values; the same
        credentials give other keys under another per-process secret.
        """
        guard = self.make_guard()
        self.successResultOf(self.check())
        self.assertRefused(self.check(password=b"wrong-password"))
        self.assertEqual(len(guard._cache), 1)
        self.assertEqual(len(guard._wrong), 1)
        for table in (guard._cache, guard._wrong):
            for key, value in table.items():
                self.assertIsInstance(key, bytes)
                self.assertEqual(len(key), 32)
                for password in (PASSWORD, b"wrong-password"):
                    self.assertNotIn(password, key)
                    self.assertNotIn(password.decode(), repr(value))
                    self.assertNotIn(password, repr(value).encode())

        other = Guard(self.backend, lambda: self.model, self.clock)
        self.successResultOf(other.requestAvatarId(BasicCredentials(USER, PASSWORD, ATTACKER)))
        self.assertEqual(len(other._cache), 1)
        self.assertNotEqual(set(other._cache), set(guard._cache))

    def test_case_insensitive_key(self) -> None:
        """
        C{Demo@Example.TEST} and C{demo@example.test} share a cache entry
        when local parts are case-insensitive (the default).
        """
        self.make_guard()
        self.successResultOf(self.check())
        self.assertEqual(self.successResultOf(self.check("Demo@Example.TEST")), OWNER)
        self.assertCalls(1)

    def test_case_sensitive_key(self) -> None:
        """
        With C{case_sensitive_local}, C{DEMO@example.test} is another
        account: not a cache hit.
        """
        self.make_guard(case_sensitive_local="true")
        self.successResultOf(self.check())
        self.check("DEMO@example.test").addErrback(lambda f: None)
        self.assertCalls(2)


# -- concurrency -------------------------------------------------------------------


class ConcurrencyTests(GuardTestCase):
    """
    Single flight for identical concurrent checks and a bounded number of
    pending checks (SECURITY.md sections 8 and 9; issue 6, section 2).
    """

    def test_single_flight_success(self) -> None:
        """
        Two identical checks while the first is running: one backend call,
        both get its principal when it answers.
        """
        self.make_guard()
        self.backend.hold()
        first, second = self.check(), self.check()
        self.assertCalls(1)
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.backend.release()
        self.assertEqual(self.successResultOf(first), OWNER)
        self.assertEqual(self.successResultOf(second), OWNER)
        self.assertEqual(self.guard.pending, 0)

    def test_single_flight_failure(self) -> None:
        """
        Two identical wrong checks at once: one backend call, both fail,
        and the failure counts once: with a limit of 3, one more wrong
        password leaves the right one working (counted twice, the account
        would be locked).
        """
        self.make_guard(account_failures=3, network_failures=1000)
        self.backend.hold()
        first, second = self.check(password=b"wrong"), self.check(password=b"wrong")
        self.assertCalls(1)
        self.backend.release()
        self.assertRefused(first)
        self.assertRefused(second)
        self.backend.held = None
        self.assertRefused(self.check(password=b"wrong-2"))
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(3)

    def test_other_password_not_joined(self) -> None:
        """
        A check with another password while one is running is checked on
        its own.
        """
        self.make_guard()
        self.backend.hold()
        right, wrong = self.check(), self.check(password=b"wrong")
        self.assertCalls(2)
        self.backend.release(1)
        self.assertRefused(wrong)
        self.assertNoResult(right)
        self.backend.release()
        self.assertEqual(self.successResultOf(right), OWNER)

    def test_max_pending(self) -> None:
        """
        With C{max_pending} checks waiting, one more distinct check fails
        at once with L{CheckerBusy} (503) without reaching the backend; an
        identical one joins its running twin; once a check finishes, new
        ones are accepted again.
        """
        self.make_guard(max_pending=3)
        self.backend.hold()
        pending = [self.check(f"user{i}@example.test", b"pw", f"192.0.2.{i}")
                   for i in range(3)]
        self.assertCalls(3)
        self.assertEqual(self.guard.pending, 3)
        busy = self.failureResultOf(self.check(), CheckerBusy)
        self.assertIsInstance(busy.value, Unavailable)
        self.assertCalls(3)
        twin = self.check("user0@example.test", b"pw", "192.0.2.0")
        self.assertNoResult(twin)
        self.assertCalls(3)
        self.backend.release()
        self.assertRefused(pending[0])
        self.assertRefused(twin)
        accepted = self.check()
        self.assertNoResult(accepted)
        self.assertCalls(4)
        while self.backend.held:
            self.backend.release(len(self.backend.held) - 1)
        self.assertEqual(self.successResultOf(accepted), OWNER)
        for d in pending[1:]:
            self.assertRefused(d)
        self.assertEqual(self.guard.pending, 0)


# -- backend errors --------------------------------------------------------------


class BackendErrorTests(GuardTestCase):
    """
    A check that cannot be made is a 503, never a counted failure
    (SECURITY.md section 8: "LDAP server down -> 503 (not 401), no lockout
    counted"; "backend unreachable -> 503 without counting a failure").
    """

    def test_backend_unavailable_not_counted(self) -> None:
        """
        30 distinct passwords while the backend is down: every one fails
        with L{BackendUnavailable} and reaches the backend (no lock, no
        network block); when it is back, a password tried during the outage
        is checked again (not remembered as wrong), and the right one
        succeeds.
        """
        self.make_guard()
        self.backend.error = BackendUnavailable()
        for i in range(30):
            self.failureResultOf(self.check(password=b"maybe-%d" % (i,)), BackendUnavailable)
        self.assertCalls(30)
        self.backend.error = None
        self.assertRefused(self.check(password=b"maybe-29"))
        self.assertCalls(31)
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(32)

    def test_unexpected_error(self) -> None:
        """
        A backend raising something unexpected: logged with its traceback,
        turned into L{Unavailable} (503), not counted as a failure.
        """
        self.make_guard()
        self.backend.raised = RuntimeError("directory exploded")
        for i in range(20):
            failure = self.failureResultOf(self.check(password=b"pw-%d" % (i,)), Unavailable)
            self.assertFalse(failure.check(RuntimeError))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 20)
        self.backend.raised = None
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(21)
        self.assertEqual(self.guard.pending, 0)


# -- logs -----------------------------------------------------------------------------


class LogTests(GuardTestCase):
    """
    One stable log line per failure, with user, source and reason; never
    the password (SECURITY.md section 3.4, "Required" 5; section 3.3: lock
    reasons go to the log only).
    """

    def assertOneFailureEvent(self, events: list[dict[str, Any]], since: int,
                              username: str, source: str) -> str:
        """
        Exactly one event since C{since}, naming C{username} and
        C{source} and giving a reason; return the reason.
        """
        new = events[since:]
        self.assertEqual(len(new), 1, [formatEvent(e) for e in new])
        text = formatEvent(new[0])
        self.assertIn("authentication failed", text)
        self.assertIn("user=" + repr(username), text)
        self.assertIn("source=" + source, text)
        match = re.search(r"\breason=(\S+)", text)
        self.assertIsNotNone(match, text)
        return match.group(1)

    def test_one_event_per_failure(self) -> None:
        """
        A rejected password, a repeated wrong password, a locked account and
        a throttled network each log one event with user, source and a
        reason of its own.
        """
        self.make_guard(account_failures=2, network_failures=3)
        events = self.capture_log()
        cases = [
            ("alice@example.test", b"wrong-1", ATTACKER),  # rejected
            ("alice@example.test", b"wrong-1", ATTACKER),  # repeated
            ("alice@example.test", b"wrong-2", ATTACKER),  # rejected, locks alice
            ("alice@example.test", b"anything", ELSEWHERE),  # account locked
            ("bob@example.test", b"wrong-3", "198.51.100.8"),  # rejected, blocks the /24
            ("carol@example.test", b"wrong-4", "198.51.100.9"),  # network throttled
        ]
        reasons = []
        for username, password, source in cases:
            since = len(events)
            self.assertRefused(self.check(username, password, source))
            reasons.append(self.assertOneFailureEvent(events, since, username, source))
        self.assertCalls(3)
        self.assertEqual(reasons[0], reasons[2])
        self.assertEqual(reasons[0], reasons[4])
        self.assertEqual(len({reasons[0], reasons[1], reasons[3], reasons[5]}), 4, reasons)

    def test_success_logged(self) -> None:
        """
        A checked success logs who, from where and the outcome.
        """
        self.make_guard()
        events = self.capture_log()
        self.successResultOf(self.check(source=HOME))
        self.assertEqual(len(events), 1)
        text = formatEvent(events[0])
        self.assertIn("succeeded", text)
        self.assertIn(repr(USER), text)
        self.assertIn(HOME, text)

    def test_no_password_in_any_event(self) -> None:
        """
        Successes, failures, locks, busy refusals and backend errors: no
        event, formatted or raw, contains a password.
        """
        self.make_guard(account_failures=2, max_pending=1)
        events = self.capture_log()
        passwords = [PASSWORD, b"Wrong-Secret-1", b"Wrong-Secret-2", b"Wrong-Secret-3"]
        self.successResultOf(self.check())
        for password in passwords[1:]:
            self.assertRefused(self.check(password=password))
            self.assertRefused(self.check(password=password))
        self.backend.hold()
        held = self.check(source=HOME, password=b"Held-Secret-4")
        self.failureResultOf(self.check(source=HOME, password=b"Busy-Secret-5"), CheckerBusy)
        self.backend.release()
        self.assertRefused(held)
        self.backend.held = None
        self.backend.raised = RuntimeError("boom")
        self.failureResultOf(self.check(source=HOME, password=b"Error-Secret-6"), Unavailable)
        self.flushLoggedErrors(RuntimeError)
        passwords += [b"Held-Secret-4", b"Busy-Secret-5", b"Error-Secret-6"]
        self.assertGreaterEqual(len(events), 8)
        for event in events:
            text = event_text(event)
            for password in passwords:
                self.assertNotIn(password.decode(), text)

    def test_overlong_user_shortened(self) -> None:
        """
        An overlong user name is shortened in the log line.
        """
        self.make_guard()
        events = self.capture_log()
        username = "u" * 300 + "@example.test"
        self.assertRefused(self.check(username, b"x"))
        self.assertEqual(len(events), 1)
        text = formatEvent(events[0])
        self.assertNotIn(username, text)
        self.assertIn("u" * 32, text)
        self.assertLess(len(text), 200)

    def test_control_characters_escaped(self) -> None:
        """
        A user name with line breaks cannot forge a second log line.
        """
        self.make_guard()
        events = self.capture_log()
        username = "x@example.test\nauthentication succeeded: user='admin'\r"
        self.assertRefused(self.check(username, b"x"))
        [event] = events
        text = formatEvent(event)
        self.assertNotIn("\n", text)
        self.assertNotIn("\r", text)


# -- outcomes ------------------------------------------------------------------------


class OutcomeTests(GuardTestCase):
    """
    L{Guard.outcomes}, what C{smartdiscover_auth_total{outcome}} shows:
    one outcome per login, each meaning one thing (issue 16, section 6).
    A repeated wrong password is C{repeated}, never C{throttled}, which
    only the policy's locks give.
    """

    def outcomes(self) -> dict[str, int]:
        return {k: v for k, v in self.guard.outcomes.items() if v}

    def reasons(self, events: list[dict[str, Any]]) -> list[str]:
        return [re.search(r"\breason=(\S+)", formatEvent(e)).group(1)  # type: ignore[union-attr]
                for e in events if "authentication failed" in formatEvent(e)]

    def test_stale_password_retried(self) -> None:
        """
        The owner's phone logs in, then retries a stale password 20 times,
        a minute apart: the first is a failure, the 19 others are repeated;
        nothing is throttled (the owner is not locked out: the right
        password still works from there and from elsewhere), one check
        reached the store for the wrong password, and the log keeps its
        reasons: rejected once, then repeated-password.
        """
        self.make_guard()
        self.successResultOf(self.check(source=HOME))
        events = self.capture_log()
        for _ in range(20):
            self.assertRefused(self.check(password=b"stale", source=HOME))
            self.clock.advance(60)
        self.assertEqual(self.outcomes(), {"success": 1, "failure": 1, "repeated": 19})
        self.assertCalls(2)
        self.assertEqual(self.reasons(events), ["rejected"] + ["repeated-password"] * 19)
        self.assertEqual(self.successResultOf(self.check(source=HOME)), OWNER)
        self.assertEqual(self.successResultOf(self.check(source=ELSEWHERE)), OWNER)
        self.assertEqual(self.outcomes(), {"success": 3, "failure": 1, "repeated": 19})

    def test_repeated_from_anywhere(self) -> None:
        """
        The same wrong password for the same account is repeated from any
        client; for another account, or another password, it is a failure.
        """
        self.make_guard()
        self.assertRefused(self.check(password=b"stale", source=HOME))
        self.assertRefused(self.check(password=b"stale", source=ELSEWHERE))
        self.assertRefused(self.check("alice@example.test", b"stale", HOME))
        self.assertRefused(self.check(password=b"stale-2", source=HOME))
        self.assertEqual(self.outcomes(), {"failure": 3, "repeated": 1})

    def test_repeat_after_it_is_forgotten(self) -> None:
        """
        A wrong password is remembered as long as the longer window: tried
        again after that, it is checked and counted again, a failure.
        """
        self.make_guard()
        self.assertRefused(self.check(password=b"stale"))
        self.clock.advance(max(self.policy.network_window, self.policy.account_window) - 1)
        self.assertRefused(self.check(password=b"stale"))
        self.assertEqual(self.outcomes(), {"failure": 1, "repeated": 1})
        self.clock.advance(2)
        self.assertRefused(self.check(password=b"stale"))
        self.assertEqual(self.outcomes(), {"failure": 2, "repeated": 1})
        self.assertCalls(2)

    def test_throttled_is_the_policy(self) -> None:
        """
        C{throttled} counts what the policy refused without a check: a full
        network (C{network-throttled}) and a locked account
        (C{account-locked}); a stale password retried from a locked place
        is throttled too, the lock coming first.
        """
        self.make_guard(account_failures=2, network_failures=3)
        events = self.capture_log()
        self.assertRefused(self.check(password=b"wrong-1"))  # failure
        self.assertRefused(self.check(password=b"wrong-1"))  # repeated
        self.assertRefused(self.check(password=b"wrong-2"))  # failure: locks the account
        self.assertRefused(self.check(password=b"wrong-1", source=ELSEWHERE))  # locked
        self.assertRefused(self.check("bob@example.test", b"x", "198.51.100.8"))  # failure
        self.assertRefused(self.check("carol@example.test", b"y", "198.51.100.9"))  # network
        self.assertEqual(self.outcomes(), {"failure": 3, "repeated": 1, "throttled": 2})
        self.assertEqual(self.reasons(events),
                         ["rejected", "repeated-password", "rejected", "account-locked",
                          "rejected", "network-throttled"])
        self.assertCalls(3)

    def test_remote_store_repeats(self) -> None:
        """
        With LDAP or IMAP a repeated wrong password is checked again (the
        password may have changed there); refused again, it is repeated,
        not a failure, and still counted once against the account.
        """
        self.model = guarded_model(self.mktemp(), account_failures=3, network_failures=1000)
        self.clock = Clock()
        self.backend = FakeBackend()
        self.guard = Guard(self.backend, lambda: self.model, self.clock, local_store=False)
        for _ in range(10):
            self.assertRefused(self.check(password=b"stale"))
        self.assertCalls(10)
        self.assertEqual(self.outcomes(), {"failure": 1, "repeated": 9})
        self.assertEqual(self.successResultOf(self.check()), OWNER)

    def test_shared_checks(self) -> None:
        """
        Identical checks that wait for one running check each count an
        outcome: the verified password a success each, a wrong one a
        failure for the check and repeated for those that shared it.
        """
        self.make_guard()
        self.backend.hold()
        right = [self.check(source=HOME) for _ in range(3)]
        wrong = [self.check(password=b"stale", source=HOME) for _ in range(4)]
        self.assertCalls(2)
        self.assertEqual(self.outcomes(), {})
        self.backend.release(1)
        self.backend.release(0)
        for d in right:
            self.assertEqual(self.successResultOf(d), OWNER)
        for d in wrong:
            self.assertRefused(d)
        self.assertEqual(self.outcomes(), {"success": 3, "failure": 1, "repeated": 3})

    def test_busy_unavailable_error(self) -> None:
        """
        A check refused because C{max_pending} checks are pending is busy;
        a store that cannot answer is unavailable; a store raising
        something unexpected is an error (logged with its traceback).  All
        three are 503s and none is a failure.
        """
        self.make_guard(max_pending=1)
        self.backend.hold()
        held = self.check(password=b"held", source=HOME)
        self.failureResultOf(self.check(password=b"other", source=HOME), CheckerBusy)
        self.assertEqual(self.outcomes(), {"busy": 1})
        self.backend.release()
        self.assertRefused(held)
        self.backend.held = None
        self.backend.error = BackendUnavailable()
        self.failureResultOf(self.check(password=b"down"), BackendUnavailable)
        self.backend.error = None
        self.backend.raised = RuntimeError("bug")
        failure = self.failureResultOf(self.check(password=b"bug"), Unavailable)
        self.assertFalse(failure.check(RuntimeError))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.outcomes(),
                         {"busy": 1, "failure": 1, "unavailable": 1, "error": 1})

    def test_malformed(self) -> None:
        """
        L{Guard.malformed} counts a login whose header held no usable
        credentials, and nothing else: no check, no counter.
        """
        self.make_guard(network_failures=1)
        for _ in range(5):
            self.guard.malformed()
        self.assertEqual(self.outcomes(), {"malformed": 5})
        self.assertEqual(self.successResultOf(self.check()), OWNER)
        self.assertCalls(1)

    def test_one_outcome_per_login(self) -> None:
        """
        Over a mix of everything, the outcomes add up to the logins.
        """
        self.make_guard(account_failures=3, network_failures=4, max_pending=2)
        logins = 0
        for i in range(30):
            d = self.check(f"user{i % 4}@example.test", b"pw-%d" % (i % 3,),
                           f"198.51.{i % 2}.{i}")
            d.addErrback(lambda f: None)
            logins += 1
            self.clock.advance(17)
        self.successResultOf(self.check())
        self.guard.malformed()
        logins += 2
        self.assertEqual(sum(self.guard.outcomes.values()), logins)
        self.assertEqual(set(self.guard.outcomes), {"success", "failure", "repeated",
                                                    "throttled", "malformed"})

    def test_malformed_through_the_tree(self) -> None:
        """
        Through the resource tree, a header that holds no usable Basic
        credentials (bad Base64, no colon, another scheme) is a 401 counted
        malformed by the guard; a request without any header gets the first
        challenge and counts nothing; good credentials count a success.
        """
        from smartdiscover.web.tree import build_resource_tree
        from tests.unit.test_web import (AUTODISCOVER_PATH, OUTLOOK_REQUEST, Connection,
                                         basic, http_request)

        self.make_guard()
        tree = build_resource_tree(self.guard, lambda: self.model, lambda domain: None,
                                   self.model.public_hostname)
        headers: list[tuple[bytes, ...]] = [
            (b"Authorization: Basic !!!",), (b"Authorization: Basic " + b"bm9jb2xvbg==",),
            (b"Authorization: Negotiate TlRMTVNTUAAB",), ()]
        for header in headers:
            connection = Connection(tree)
            connection.send(http_request(b"POST", AUTODISCOVER_PATH, header, OUTLOOK_REQUEST))
            self.assertEqual(connection.response().code, 401, header)
        self.assertEqual(self.outcomes(), {"malformed": 3})
        connection = Connection(tree)
        connection.send(http_request(b"POST", AUTODISCOVER_PATH,
                                     (basic(USER.encode(), PASSWORD),), OUTLOOK_REQUEST))
        self.assertEqual(connection.response().code, 200)
        self.assertEqual(self.outcomes(), {"malformed": 3, "success": 1})
        self.assertCalls(1)
