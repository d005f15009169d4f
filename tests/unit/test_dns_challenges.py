"""
Tests for DNS-01 challenges answered by SmartDiscover's own responder:
L{smartdiscover.dns.challenges.ZoneChallenges}, the TXT records
L{smartdiscover.dns.server.build_zones} adds, and the serialised
L{smartdiscover.dns.service.Rebuilds} that put them in force beside
reloads and health changes.

In process and deterministic: the thread pool is a fake whose jobs run
when a test says so, the reactor's callFromThread calls at once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from smartdiscover.certs.acme.responders import (
    MAX_PUBLISHED,
    IDNS01Responder,
    TooManyChallenges,
)
from smartdiscover.config import load
from smartdiscover.config.model import Model
from smartdiscover.config.store import ConfigStore
from smartdiscover.dns.challenges import ZoneChallenges, challenge_owner
from smartdiscover.dns.server import CHALLENGE_TTL, Zones, build_zones
from smartdiscover.dns.service import Rebuilds, responder
from smartdiscover.dns.table import Table, wire_name
from smartdiscover.dns.wire import respond
from tests.helpers import edit, run_synchronously, write_config
from tests.unit.test_dns_server import SERVER_INI

OWNER = "_acme-challenge.autodiscover.example.test"
VALUE = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
OTHER = "gfj9Xq-Xm5Fi9rCRjkPDJNeG5f4vYYTEUcbmHyU0cLk"
MOVED_IMAP = edit("security = ssl", "security = ssl\nport = 1993", SERVER_INI)


def load_model(ini: str = SERVER_INI) -> Model:
    with tempfile.TemporaryDirectory() as directory:
        return load(write_config(directory, ini))


def ask(table: Table, name: str, rdtype: str = "TXT") -> dns.message.Message:
    """
    The response of C{table} to a query for C{name}, over TCP (never cut).
    """
    response = respond(dns.message.make_query(name, rdtype).to_wire(), table, False)
    assert response is not None
    return dns.message.from_wire(response.data)


def txt(table: Table, name: str = OWNER) -> set[str]:
    """
    The TXT values C{table} answers at C{name}, which must be a positive,
    authoritative answer.
    """
    message = ask(table, name)
    if message.rcode() != dns.rcode.NOERROR or not message.flags & dns.flags.AA:
        raise AssertionError(f"not an authoritative answer:\n{message}")
    return {b"".join(rdata.strings).decode("ascii")
            for rrset in message.answer for rdata in rrset}


def srv_port(table: Table) -> int:
    (rrset,) = ask(table, "_imaps._tcp.example.test", "SRV").answer
    return int(next(iter(rrset)).port)


class Job:
    """
    A job of L{FakePool}, run in two steps when a test wants: the work
    (off the reactor, reading its inputs) and the delivery of its result
    (on the reactor).
    """

    def __init__(self, on_result: Callable[[bool, Any], None], f: Callable[..., Any],
                 args: tuple[Any, ...]) -> None:
        self._on_result = on_result
        self._f = f
        self._args = args
        self._outcome: tuple[bool, Any] | None = None

    def work(self) -> None:
        try:
            self._outcome = (True, self._f(*self._args))
        except Exception:
            self._outcome = (False, Failure())

    def deliver(self) -> None:
        if self._outcome is None:
            self.work()
        assert self._outcome is not None
        self._on_result(*self._outcome)

    def fail(self) -> None:
        """
        Deliver a failure, as a build that raised.
        """
        self._on_result(False, Failure(RuntimeError("no zones today")))


class FakePool:
    """
    A thread pool whose jobs run at once, or wait until a test runs them.
    """

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.jobs: list[Job] = []
        self.started = 0

    def callInThreadWithCallback(self, on_result: Callable[[bool, Any], None],
                                 f: Callable[..., Any], *args: Any) -> None:
        self.started += 1
        job = Job(on_result, f, args)
        if self.hold:
            self.jobs.append(job)
        else:
            job.deliver()

    def run(self) -> None:
        """
        Run the oldest job waiting, both steps.
        """
        self.jobs.pop(0).deliver()

    def fail(self) -> None:
        """
        Fail the oldest job waiting.
        """
        self.jobs.pop(0).fail()


class FakeReactor(Clock):
    """
    What L{responder} needs of a reactor, with a L{FakePool} for threads;
    no listener is started.
    """

    def __init__(self, hold: bool = False) -> None:
        super().__init__()
        self.pool = FakePool(hold)

    def getThreadPool(self) -> FakePool:
        return self.pool

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)


class _ResponderTestCase(SynchronousTestCase):
    """
    A L{responder} on a configuration file in a temporary directory, with a
    L{ZoneChallenges} connected.
    """

    def start(self, hold: bool = False, hold_reloads: bool = False,
              challenges: ZoneChallenges | None = None) -> Zones:
        self.reactor = FakeReactor(hold)
        self.path = write_config(Path(self.mktemp()), SERVER_INI)
        if hold_reloads:
            def run_in_thread(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
                return deferToThreadPool(self.reactor, self.reactor.pool,  # type: ignore
                                         f, *args)
        else:
            run_in_thread = run_synchronously
        self.store = ConfigStore(load(self.path), lambda: load(self.path), run_in_thread)
        self.health: list[Callable[[], None]] = []
        self.challenges = challenges or ZoneChallenges()
        _, zones = responder(self.store, lambda model: model, self.health.append,
                             self.reactor,  # type: ignore[arg-type]
                             self.challenges)
        return zones

    def publish(self, name: str = OWNER, value: str = VALUE) -> None:
        """
        Publish and check that it is in force at once (builds run
        synchronously unless held).
        """
        self.assertIsNone(self.successResultOf(self.challenges.publish(name, value)))

    def reload(self, ini: str) -> Deferred[bool]:
        self.path.write_text(ini, encoding="utf-8")
        return self.store.reload()


class ZoneChallengesTests(_ResponderTestCase):
    """
    Published values answered from the zones once publish() fires.
    """

    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IDNS01Responder, ZoneChallenges()))

    def test_published(self) -> None:
        """
        Once publish() fires, a TXT query at the owner answers the value,
        authoritatively, with a short TTL.
        """
        zones = self.start()
        self.assertEqual(ask(zones.table, OWNER).rcode(), dns.rcode.NXDOMAIN)
        self.publish()
        self.assertEqual(txt(zones.table), {VALUE})
        (rrset,) = ask(zones.table, OWNER).answer
        self.assertEqual(rrset.ttl, CHALLENGE_TTL)
        self.assertEqual(self.challenges.published(), [(OWNER, VALUE)])
        self.assertEqual(self.challenges.values(OWNER), (VALUE,))

    def test_two_values(self) -> None:
        """
        A wildcard and its base name share one owner: both values answer.
        """
        zones = self.start()
        self.publish()
        self.publish(value=OTHER)
        self.assertEqual(txt(zones.table), {VALUE, OTHER})

    def test_apex_challenge(self) -> None:
        zones = self.start()
        self.publish("_acme-challenge.example.test")
        self.assertEqual(txt(zones.table, "_acme-challenge.example.test"), {VALUE})
        self.assertEqual(ask(zones.table, "example.test", "SOA").rcode(), dns.rcode.NOERROR)

    def test_withdraw(self) -> None:
        """
        A withdrawn value is no longer answered; with none left the name is
        gone (NXDOMAIN); withdrawing what is not published builds nothing.
        """
        zones = self.start()
        self.publish()
        self.publish(value=OTHER)
        self.challenges.withdraw(OWNER, VALUE)
        self.assertEqual(txt(zones.table), {OTHER})
        self.challenges.withdraw(OWNER.upper() + ".", OTHER)
        message = ask(zones.table, OWNER)
        self.assertEqual(message.rcode(), dns.rcode.NXDOMAIN)
        self.assertTrue(message.flags & dns.flags.AA)
        self.assertEqual(message.answer, [])
        self.assertEqual(message.authority[0].rdtype, dns.rdatatype.SOA)
        started = self.reactor.pool.started
        self.challenges.withdraw(OWNER, VALUE)
        self.assertEqual(self.reactor.pool.started, started)

    def test_withdraw_nodata(self) -> None:
        """
        An owner that still exists, as the parent of another challenge's
        owner, answers NODATA once its own value is withdrawn.
        """
        zones = self.start()
        below = "_acme-challenge.sub." + OWNER
        self.publish()
        self.publish(below)
        self.challenges.withdraw(OWNER, VALUE)
        self.assertEqual(txt(zones.table, below), {VALUE})
        message = ask(zones.table, OWNER)
        self.assertEqual(message.rcode(), dns.rcode.NOERROR)
        self.assertTrue(message.flags & dns.flags.AA)
        self.assertEqual(message.answer, [])
        self.assertEqual(message.authority[0].rdtype, dns.rdatatype.SOA)
        self.challenges.withdraw(below, VALUE)
        self.assertEqual(ask(zones.table, OWNER).rcode(), dns.rcode.NXDOMAIN)

    def test_outside_zones(self) -> None:
        """
        A name outside every served zone is held (publish fires) but in no
        zone: the responder refuses it as any name not its own.
        """
        zones = self.start()
        self.publish("_acme-challenge.mail.example.org")
        self.assertEqual(ask(zones.table, "_acme-challenge.mail.example.org").rcode(),
                         dns.rcode.REFUSED)
        self.assertFalse(any(name == wire_name("_acme-challenge.mail.example.org")
                             for name, _ in zones.table.answers))
        self.assertEqual(self.challenges.published(),
                         [("_acme-challenge.mail.example.org", VALUE)])

    def test_letter_case_and_final_dot(self) -> None:
        zones = self.start()
        self.publish("_ACME-Challenge.AutoDiscover.Example.TEST.")
        self.assertEqual(txt(zones.table, "_acme-challenge.AUTODISCOVER.example.test"),
                         {VALUE})
        self.assertEqual(self.challenges.published(), [(OWNER, VALUE)])

    def test_hostile_names(self) -> None:
        """
        A name that is no DNS name, or not an C{_acme-challenge} one, is
        refused before anything is held or built.
        """
        self.start()
        started = self.reactor.pool.started
        for name in ["_acme-challenge." + "a" * 64 + ".example.test",
                     "_acme-challenge." + ("a" * 63 + ".") * 4 + "example.test",
                     "_acme-challenge..example.test",
                     "_acme-challenge.example.test..",
                     "_acme-challenge.exämple.test",
                     "_acme-challenge.exa mple.test",
                     "_acme-challenge.ex\x00ample.test",
                     "_acme-challenge",
                     "autodiscover.example.test",
                     "example.test",
                     ""]:
            self.assertRaises(ValueError, self.challenges.publish, name, VALUE)
        for value in ["", "a b", "x" * 256, "é", "\"quoted\"", "a;b"]:
            self.assertRaises(ValueError, self.challenges.publish, OWNER, value)
        self.assertEqual(self.challenges.published(), [])
        self.assertEqual(self.reactor.pool.started, started)

    def test_longest_name(self) -> None:
        """
        A name of 253 characters fits, and answers.
        """
        zones = self.start()
        name = "_acme-challenge." + ("a" * 61 + ".") * 3 + "b" * 38 + ".example.test"
        self.assertEqual(len(name), 253)
        self.publish(name)
        self.assertEqual(txt(zones.table, name), {VALUE})

    def test_limit(self) -> None:
        """
        The limit of L{DNS01Records} holds; publications made before the
        responder connects wait for the zones it builds.
        """
        challenges = ZoneChallenges()
        waiting = [challenges.publish(f"_acme-challenge.n{i}.example.test", VALUE)
                   for i in range(MAX_PUBLISHED)]
        self.assertRaises(TooManyChallenges, challenges.publish, OWNER, VALUE)
        self.assertNoResult(waiting[0])
        zones = self.start(challenges=challenges)
        self.assertIsNone(self.successResultOf(waiting[0]))
        self.assertIsNone(self.successResultOf(waiting[-1]))
        self.assertEqual(txt(zones.table, f"_acme-challenge.n{MAX_PUBLISHED - 1}.example.test"),
                         {VALUE})

    def test_reload_keeps_challenges(self) -> None:
        """
        A reload builds the new model's zones with the values published.
        """
        zones = self.start()
        self.publish()
        self.assertTrue(self.successResultOf(self.reload(MOVED_IMAP)))
        self.assertEqual(srv_port(zones.table), 1993)
        self.assertEqual(txt(zones.table), {VALUE})

    def test_health_change_keeps_challenges(self) -> None:
        zones = self.start()
        self.publish()
        before = zones.table
        (changed,) = self.health
        changed()
        self.assertIsNot(zones.table, before)
        self.assertEqual(txt(zones.table), {VALUE})


class SerialisedTests(_ResponderTestCase):
    """
    One build at a time: what is requested meanwhile waits for the next,
    and an older table never replaces a newer one.
    """

    def test_publish_during_build(self) -> None:
        """
        A value published while a build runs fires only after the build
        after it, which holds both values; only two builds run for three
        publications.
        """
        zones = self.start(hold=True)
        first = self.challenges.publish(OWNER, VALUE)
        second = self.challenges.publish(OWNER, OTHER)
        third = self.challenges.publish("_acme-challenge.example.test", VALUE)
        self.assertEqual(len(self.reactor.pool.jobs), 1)
        self.assertEqual(ask(zones.table, OWNER).rcode(), dns.rcode.NXDOMAIN)
        self.reactor.pool.run()
        self.assertIsNone(self.successResultOf(first))
        self.assertNoResult(second)
        self.assertNoResult(third)
        self.assertEqual(txt(zones.table), {VALUE})
        self.assertEqual(len(self.reactor.pool.jobs), 1)
        self.reactor.pool.run()
        self.assertIsNone(self.successResultOf(second))
        self.assertIsNone(self.successResultOf(third))
        self.assertEqual(txt(zones.table), {VALUE, OTHER})
        self.assertEqual(self.reactor.pool.jobs, [])

    def test_failed_build(self) -> None:
        """
        A build that fails fails its publications and is logged; the table
        in force stays, and the next publication builds again.
        """
        zones = self.start(hold=True)
        before = zones.table
        waiting = self.challenges.publish(OWNER, VALUE)
        self.reactor.pool.fail()
        self.failureResultOf(waiting, RuntimeError)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIs(zones.table, before)
        self.assertEqual(self.reactor.pool.jobs, [])
        again = self.challenges.publish(OWNER, OTHER)
        self.reactor.pool.run()
        self.assertIsNone(self.successResultOf(again))
        self.assertEqual(txt(zones.table), {VALUE, OTHER})

    def test_failed_withdraw_logged(self) -> None:
        zones = self.start(hold=True)
        self.challenges.publish(OWNER, VALUE)
        self.reactor.pool.run()
        self.challenges.withdraw(OWNER, VALUE)
        self.reactor.pool.fail()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertEqual(txt(zones.table), {VALUE})

    def test_reload_during_build(self) -> None:
        """
        A health rebuild reads the model in force as it starts; a reload
        committed meanwhile is newer, and that build's table is dropped.
        """
        zones = self.start(hold=True)
        (changed,) = self.health
        changed()
        self.assertEqual(len(self.reactor.pool.jobs), 1)
        self.assertTrue(self.successResultOf(self.reload(MOVED_IMAP)))
        self.assertEqual(srv_port(zones.table), 1993)
        self.reactor.pool.run()
        self.assertEqual(srv_port(zones.table), 1993)
        self.assertEqual(self.reactor.pool.jobs, [])

    def test_publish_during_reload(self) -> None:
        """
        A value published after a reload read what is published is not
        lost when the reload commits: the reload's table waits for a build
        that holds both, and the value stays answered once publish fired.
        """
        zones = self.start(hold=True, hold_reloads=True)
        reloaded = self.reload(MOVED_IMAP)
        reload_job = self.reactor.pool.jobs.pop(0)
        reload_job.work()  # read the file and build, without the value
        waiting = self.challenges.publish(OWNER, VALUE)
        self.assertEqual(len(self.reactor.pool.jobs), 1)
        reload_job.deliver()
        self.assertTrue(self.successResultOf(reloaded))
        self.assertEqual(srv_port(zones.table), 993)  # its table was out of date
        self.reactor.pool.run()
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(txt(zones.table), {VALUE})
        self.assertEqual(len(self.reactor.pool.jobs), 1)
        self.reactor.pool.run()
        self.assertEqual(srv_port(zones.table), 1993)
        self.assertEqual(txt(zones.table), {VALUE})
        self.assertEqual(self.reactor.pool.jobs, [])

    def test_publish_before_reload_reads(self) -> None:
        """
        A reload that read the values after a publication puts them in
        force itself, and fires the publication then.
        """
        zones = self.start(hold=True, hold_reloads=True)
        waiting = self.challenges.publish(OWNER, VALUE)
        reloaded = self.reload(MOVED_IMAP)
        build_job, reload_job = self.reactor.pool.jobs
        self.reactor.pool.jobs.clear()
        reload_job.deliver()
        self.assertTrue(self.successResultOf(reloaded))
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(srv_port(zones.table), 1993)
        self.assertEqual(txt(zones.table), {VALUE})
        build_job.deliver()  # read the old model: dropped
        self.assertEqual(srv_port(zones.table), 1993)
        self.assertEqual(self.reactor.pool.jobs, [])


class RebuildsTests(SynchronousTestCase):
    """
    L{Rebuilds} alone, with builds the tests fire by hand.
    """

    def setUp(self) -> None:
        self.builds: list[Deferred[int]] = []
        self.committed: list[int] = []
        self.rebuilds: Rebuilds[int] = Rebuilds(self.build, self.committed.append)

    def build(self) -> Deferred[int]:
        self.builds.append(Deferred())
        return self.builds[-1]

    def test_one_at_a_time(self) -> None:
        first = self.rebuilds.request()
        second = self.rebuilds.request()
        third = self.rebuilds.request()
        self.assertEqual(len(self.builds), 1)
        self.builds[0].callback(1)
        self.assertEqual(self.committed, [1])
        self.assertIsNone(self.successResultOf(first))
        self.assertNoResult(second)
        self.assertEqual(len(self.builds), 2)
        self.builds[1].callback(2)
        self.assertIsNone(self.successResultOf(second))
        self.assertIsNone(self.successResultOf(third))
        self.assertEqual(self.committed, [1, 2])
        self.assertEqual(len(self.builds), 2)

    def test_failure(self) -> None:
        """
        A failed build fails its waiters only, is logged, and does not stop
        the next request from building.
        """
        first = self.rebuilds.request()
        second = self.rebuilds.request()
        self.builds[0].errback(ValueError("broken"))
        self.failureResultOf(first, ValueError)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.builds[1].callback(2)
        self.assertIsNone(self.successResultOf(second))
        self.assertEqual(self.committed, [2])

    def test_build_raises(self) -> None:
        def broken() -> Deferred[int]:
            raise ValueError("broken")
        rebuilds: Rebuilds[int] = Rebuilds(broken, self.committed.append)
        self.failureResultOf(rebuilds.request(), ValueError)
        self.failureResultOf(rebuilds.request(), ValueError)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 2)

    def test_commit_raises(self) -> None:
        def commit(built: int) -> None:
            raise ValueError("broken")
        rebuilds: Rebuilds[int] = Rebuilds(self.build, commit)
        waiting = rebuilds.request()
        self.builds[0].callback(1)
        self.failureResultOf(waiting, ValueError)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_offer_current(self) -> None:
        """
        An offer read after every request is put in force, serves them,
        and the build running then is dropped.
        """
        waiting = self.rebuilds.request()
        self.rebuilds.offer(self.rebuilds.requested, 10)
        self.assertEqual(self.committed, [10])
        self.assertIsNone(self.successResultOf(waiting))
        self.builds[0].callback(1)
        self.assertEqual(self.committed, [10])
        self.assertEqual(len(self.builds), 1)

    def test_offer_out_of_date(self) -> None:
        """
        An offer read before a request is not put in force: a build after
        the running one replaces it.
        """
        mark = self.rebuilds.requested
        waiting = self.rebuilds.request()
        self.rebuilds.offer(mark, 10)
        self.assertEqual(self.committed, [])
        self.builds[0].callback(1)
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(len(self.builds), 2)
        self.builds[1].callback(2)
        self.assertEqual(self.committed, [1, 2])

    def test_offer_out_of_date_idle(self) -> None:
        mark = self.rebuilds.requested
        self.rebuilds.request()
        self.builds[0].callback(1)
        self.rebuilds.offer(mark, 10)
        self.assertEqual(len(self.builds), 2)
        self.builds[1].callback(2)
        self.assertEqual(self.committed, [1, 2])

    def test_request_from_waiter(self) -> None:
        """
        A waiter that requests again as it fires gets a build of its own.
        """
        again: list[Deferred[None]] = []
        self.rebuilds.request().addCallback(lambda _: again.append(self.rebuilds.request()))
        self.builds[0].callback(1)
        self.assertEqual(len(self.builds), 2)
        self.assertNoResult(again[0])
        self.builds[1].callback(2)
        self.assertIsNone(self.successResultOf(again[0]))


class BuildZonesTests(SynchronousTestCase):
    """
    The TXT records L{build_zones} adds for challenges.
    """

    def test_without_challenges(self) -> None:
        model = load_model()
        self.assertEqual(ask(build_zones(model), OWNER).rcode(), dns.rcode.NXDOMAIN)
        self.assertEqual(ask(build_zones(model, []), OWNER).rcode(), dns.rcode.NXDOMAIN)

    def test_added(self) -> None:
        table = build_zones(load_model(), iter([(OWNER, VALUE), ("example.test", OTHER),
                                                ("_acme-challenge.example.org", VALUE)]))
        self.assertEqual(txt(table), {VALUE})
        self.assertEqual(txt(table, "example.test"), {OTHER})
        self.assertEqual(ask(table, "_acme-challenge.example.org").rcode(), dns.rcode.REFUSED)

    def test_normalised_and_deduplicated(self) -> None:
        table = build_zones(load_model(), [(OWNER.upper() + ".", VALUE), (OWNER, VALUE)])
        (rrset,) = ask(table, OWNER).answer
        self.assertEqual(len(rrset), 1)

    def test_invalid_left_out(self) -> None:
        """
        A pair that is no name and value is left out, and the rest built.
        """
        table = build_zones(load_model(), [("a" * 64 + ".example.test", VALUE),
                                           ("x..example.test", VALUE), (OWNER, "a b"),
                                           (OWNER, OTHER)])
        self.assertEqual(txt(table), {OTHER})

    def test_beside_records(self) -> None:
        """
        Beside the owner's own TXT, a value takes that RRset's TTL; at a
        CNAME (a delegated challenge), none is added.
        """
        model = load_model(SERVER_INI + "\n[records]\n"
                           "_acme-challenge.www.example.test CNAME = www.acme.example.org\n"
                           "_acme-challenge.txt.example.test TXT = \"hello\"\n")
        table = build_zones(model, [("_acme-challenge.www.example.test", VALUE),
                                    ("_acme-challenge.txt.example.test", VALUE)])
        message = ask(table, "_acme-challenge.www.example.test")
        self.assertEqual([rrset.rdtype for rrset in message.answer], [dns.rdatatype.CNAME])
        self.assertEqual(txt(table, "_acme-challenge.txt.example.test"), {"hello", VALUE})
        (rrset,) = ask(table, "_acme-challenge.txt.example.test").answer
        assert model.dns is not None
        self.assertEqual(rrset.ttl, model.dns.ttl)

    def test_challenge_owner(self) -> None:
        self.assertEqual(challenge_owner("_ACME-challenge.Example.TEST.", VALUE),
                         "_acme-challenge.example.test")
        self.assertRaises(ValueError, challenge_owner, ".", VALUE)
        self.assertRaises(ValueError, challenge_owner, "a" * 254, VALUE)
