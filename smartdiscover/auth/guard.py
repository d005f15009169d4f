"""
The guard in front of every credential checker (SECURITY.md 3.3, 3.4, 8).

- Throttles before any hashing or backend call: per client network (/24,
  /64) and per account.  Where the account logged in before, failures
  count apart: from that very address (an IPv4 address, an IPv6 /64)
  against a counter of that address, from elsewhere in its network against
  a counter of that network, from anywhere else against the account's
  unfamiliar counter.  So no address but the owner's own can lock the
  owner out of it, and an attacker elsewhere in the owner's office gets
  no more guesses than one anywhere else.  Familiar places skip the
  network throttle.  A success from the cache makes its place familiar as
  a checked one does.
- A password found wrong is remembered (as a keyed hash) and counted once: a
  phone retrying a stale password does not lock its owner out, and with the
  password file a repeated guess costs no verification.
- Successful checks are cached for a short time under a keyed hash of the
  credentials with a per-process key, so clients asking again cost nothing.
  With the password file, each entry holds the stored hash it was checked
  against and holds only while that hash is unchanged, so a reload costs no
  new verification; other backends drop the cache on every reload.
- At most C{max_pending} checks wait or run; beyond that, 503 at once.

A throttled or locked state never shows: it fails like a wrong password.

Every login the guard decides counts one outcome in C{outcomes} (for
C{smartdiscover_auth_total}; docs/operations.md lists them):

- C{success}: verified, answered from the cache, or shared with an
  identical check that was verified;
- C{failure}: a wrong password counted against the counters (the first
  time this password is tried for this account);
- C{repeated}: a wrong password already counted (the same password again
  for the same account, from anywhere): refused without a check with the
  password file, checked again and refused with LDAP or IMAP, or shared
  with an identical check that was refused; never counted again;
- C{throttled}: refused by the policy without a check, the client's
  network or the account's counter being full or locked;
- C{malformed}: an C{Authorization} header that is no usable Basic
  credentials (counted by the HTTP layer through L{Guard.malformed});
- C{busy}: refused at once (503) with C{max_pending} checks pending;
- C{unavailable}: the user store could not answer (503);
- C{error}: the check raised something unexpected (503, logged with its
  traceback).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from typing import Callable, Hashable

from cachetools import LRUCache
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from smartdiscover.auth.credentials import IBasicCredentials, IPrincipalChecker, snapshot
from smartdiscover.auth.errors import CheckerBusy, Unavailable
from smartdiscover.auth.penalties import Penalties
from smartdiscover.config.address import AddressError, address_key
from smartdiscover.config.model import GuardPolicy, Model
from smartdiscover.config.principal import Principal
from smartdiscover.netblocks import client_of, network_of

# (kind, client address, account, place): "failed" with the counter it
# counted against ("address", "network", or "" for the unfamiliar one);
# "verified" (the backend said yes) or "seen" (a cached success), place "".
GuardEvent = tuple[str, str, str, str]

FAMILIAR_FOR = 30 * 24 * 3600.0  # how long a place stays familiar after a success
FAMILIAR_REFRESH = 3600.0  # how often a cached success renews it (and is told)
TABLE_SIZE = 100_000
# What a login can come to, as C{smartdiscover_auth_total} labels them.
OUTCOMES = ("success", "failure", "repeated", "throttled", "malformed", "busy", "unavailable",
            "error")
ADDRESS, NETWORK, UNFAMILIAR = "address", "network", ""


def client_network(host: str) -> Hashable:
    """
    The /24 of an IPv4 address, the /64 of an IPv6 one.
    """
    return network_of(host, ipv6_bytes=8)


def _shown(username: str) -> str:
    return repr(username[:64])


@implementer(IPrincipalChecker)
class Guard:
    credentialInterfaces = (IBasicCredentials,)
    _log = Logger()

    def __init__(self, backend: IPrincipalChecker, current_model: Callable[[], Model],
                 clock: IReactorTime, secret: bytes | None = None,
                 local_store: bool = True) -> None:
        """
        @param local_store: whether every password change reaches us as a
            reload (the password file): only then is a remembered wrong
            password refused without asking the backend.  A directory or
            mail server may change a password behind our back, so there a
            repeat is checked again, but still counted once.
        """
        self._backend = backend
        self._local_store = local_store
        self._current_model = current_model
        self._clock = clock
        self._secret = secret or os.urandom(32)  # never written anywhere
        self._networks = Penalties(TABLE_SIZE)
        self._accounts = Penalties(TABLE_SIZE)  # account -> failures from unfamiliar places
        self._familiar_accounts = Penalties(TABLE_SIZE)  # (account, place) -> failures there
        # (account, address or network) -> last success
        self._familiar: LRUCache[tuple[str, Hashable], float] = LRUCache(TABLE_SIZE)
        # fingerprint -> (remembered until, stamp)
        self._wrong: LRUCache[bytes, tuple[float, bytes | None]] = LRUCache(TABLE_SIZE)
        # fingerprint -> (valid until, principal, stamp)
        self._cache: LRUCache[bytes, tuple[float, Principal, bytes | None]] = LRUCache(10_000)
        self._inflight: dict[bytes, list[Deferred[Principal]]] = {}
        self._pending_networks: Counter[Hashable] = Counter()
        self._pending_accounts: Counter[Hashable] = Counter()
        self.pending = 0
        self.verifications = 0
        self.outcomes: Counter[str] = Counter()  # see the module docstring
        self._listeners: list[Callable[[GuardEvent], None]] = []

    def on_event(self, listener: Callable[[GuardEvent], None]) -> None:
        """
        C{listener} hears of every failure that counted and every success,
        for other processes to L{apply}.
        """
        self._listeners.append(listener)

    def apply(self, event: GuardEvent) -> None:
        """
        Count a failure or a success that another process saw, so that the
        counters of every process add up to what all of them saw.
        """
        kind, source, account, place = event
        now = self._clock.seconds()
        if kind == "failed":
            self._count_failure(source, account, place, now,
                                self._current_model().auth.guard)
        elif kind in ("verified", "seen"):
            self._count_success(source, account, now, verified=kind == "verified")

    def _tell(self, event: GuardEvent) -> None:
        for listener in self._listeners:
            listener(event)

    def _where(self, account: str, source: str, network: Hashable,
               now: float) -> tuple[str, Hashable, float]:
        """
        Which counter a failure of C{account} from C{source} counts against:
        its place, its key, and the last success at that address (if the
        place is the address; otherwise long ago).
        """
        since = now - FAMILIAR_FOR
        own = (account, client_of(source))
        seen = self._familiar.get(own, since)
        if seen > since:
            return ADDRESS, own, seen
        if self._familiar.get((account, network), since) > since:
            return NETWORK, (account, network), since
        return UNFAMILIAR, account, since

    def _counter(self, account: str, source: str, place: str) -> tuple[Penalties, Hashable]:
        if place == ADDRESS:
            return self._familiar_accounts, (account, client_of(source))
        if place == NETWORK:
            return self._familiar_accounts, (account, client_network(source))
        return self._accounts, account

    def _count_failure(self, source: str, account: str, place: str, now: float,
                       policy: GuardPolicy) -> None:
        self._networks.fail(client_network(source), now, policy.network_failures,
                            policy.network_window, policy.lockout, policy.max_lockout)
        accounts, key = self._counter(account, source, place)
        accounts.fail(key, now, policy.account_failures, policy.account_window,
                      policy.lockout, policy.max_lockout)

    def _count_success(self, source: str, account: str, now: float, verified: bool) -> None:
        """
        The address and its network become (or stay) familiar.  A checked
        success also clears that address's own counter; a cached one does
        not, or every cached login of the owner would hand someone behind
        the same address a fresh set of guesses.
        """
        address = client_of(source)
        self._familiar[account, address] = now
        self._familiar[account, client_network(source)] = now
        if verified:
            self._familiar_accounts.clear((account, address))

    def flush(self) -> None:
        """
        Forget every cached success and remembered wrong password: passwords
        may have changed (call on every reload).
        """
        self._cache.clear()
        self._wrong.clear()

    def reloaded(self) -> None:
        """
        A new configuration is in force.  With the password file, entries
        check their stamp (the stored hash) at every use and stay; any other
        backend may have seen passwords change: flush.
        """
        if not self._local_store:
            self.flush()

    def _stamp(self, model: Model, account: str) -> bytes | None:
        """
        What a remembered result depends on besides the password: the
        account's stored hash in the password file (C{None} elsewhere).
        """
        if not self._local_store:
            return None
        user = model.users.get(account)
        return user.password_hash if user is not None else None

    def _fingerprint(self, account: str, password: bytes) -> bytes:
        # Keyed BLAKE2b is a MAC in one call: HMAC-SHA256 costs several.
        return hashlib.blake2b(account.encode("utf-8") + b"\0" + password,
                               key=self._secret, digest_size=32).digest()

    def requestAvatarId(self, credentials: IBasicCredentials) -> Deferred[Principal]:
        model = snapshot(credentials, self._current_model)
        policy = model.auth.guard
        now = self._clock.seconds()
        try:
            account = address_key(credentials.username, model.auth.case_sensitive_local)
        except AddressError:
            account = credentials.username.casefold()
        source = credentials.source
        network = client_network(source)
        place, counter, seen = self._where(account, source, network, now)

        # Checks still running count as failures to come, so that a burst
        # of parallel guesses cannot get past the threshold before the
        # first results are in.
        if place == UNFAMILIAR and (self._networks.locked(network, now) or (
                self._networks.level(network, now, policy.network_failures,
                                     policy.network_window)
                + self._pending_networks[network] > policy.network_failures - 1)):
            return self._refuse(credentials, "network-throttled", "throttled")
        accounts = self._accounts if place == UNFAMILIAR else self._familiar_accounts
        if accounts.locked(counter, now) or (
                accounts.level(counter, now, policy.account_failures, policy.account_window)
                + self._pending_accounts[counter] > policy.account_failures - 1):
            return self._refuse(credentials, "account-locked", "throttled")

        fingerprint = self._fingerprint(account, credentials.password)
        stamp = self._stamp(model, account)
        cached = self._cache.get(fingerprint)
        if cached is not None and cached[0] > now and cached[2] == stamp:
            self.outcomes["success"] += 1
            if place != ADDRESS or seen < now - FAMILIAR_REFRESH:
                self._count_success(source, account, now, verified=False)
                self._tell(("seen", source, account, UNFAMILIAR))
            return succeed(cached[1])
        wrong = self._wrong.get(fingerprint)
        repeated = wrong is not None and wrong[0] > now and wrong[1] == stamp
        if repeated and self._local_store:
            return self._refuse(credentials, "repeated-password", "repeated")

        waiting = self._inflight.get(fingerprint)
        if waiting is not None:  # the same check is running: share its result
            d: Deferred[Principal] = Deferred()
            waiting.append(d)
            return d
        if self.pending >= policy.max_pending:
            self._log.warn("authentication busy: {pending} checks pending, refusing "
                           "user={user} source={source}", pending=self.pending,
                           user=_shown(credentials.username), source=credentials.source)
            self.outcomes["busy"] += 1
            return fail(CheckerBusy())
        self.pending += 1
        self._pending_networks[network] += 1
        self._pending_accounts[counter] += 1
        self.verifications += 1
        self._inflight[fingerprint] = []
        d = maybeDeferred(self._backend.requestAvatarId, credentials)
        d.addBoth(self._checked, credentials, account, counter, place, fingerprint, policy,
                  repeated, stamp)
        return d

    def malformed(self) -> None:
        """
        Count a login whose C{Authorization} header held no usable Basic
        credentials (the HTTP layer refuses and logs it; no check is made).
        """
        self.outcomes["malformed"] += 1

    def _refuse(self, credentials: IBasicCredentials, reason: str,
                outcome: str) -> Deferred[Principal]:
        """
        Fail without a check: C{outcome} counted, C{reason} logged.
        """
        self.outcomes[outcome] += 1
        self._log.info("authentication failed: source={source} reason={reason} user={user}",
                       user=_shown(credentials.username), source=credentials.source,
                       reason=reason)
        return fail(UnauthorizedLogin())

    def _checked(self, result: Principal | Failure, credentials: IBasicCredentials,
                 account: str, counter: Hashable, place: str, fingerprint: bytes,
                 policy: GuardPolicy, repeated: bool,
                 stamp: bytes | None) -> Principal | Failure:
        self.pending -= 1
        source = credentials.source
        for pending, key in ((self._pending_networks, client_network(source)),
                             (self._pending_accounts, counter)):
            pending[key] -= 1
            if not pending[key]:
                del pending[key]
        now = self._clock.seconds()
        if isinstance(result, Failure) and result.check(UnauthorizedLogin):
            self._wrong[fingerprint] = (
                now + max(policy.network_window, policy.account_window), stamp)
            if not repeated:  # a stale password retried counts once
                self._count_failure(source, account, place, now, policy)
                self._tell(("failed", source, account, place))
            outcome = "repeated" if repeated else "failure"
            self._log.info("authentication failed: source={source} reason=rejected "
                           "user={user}", user=_shown(credentials.username),
                           source=credentials.source)
        elif isinstance(result, Failure):
            outcome = "unavailable" if result.check(Unavailable) else "error"
            if not result.check(Unavailable):
                self._log.failure("credential check failed: user={user} source={source}",
                                  result, user=_shown(credentials.username),
                                  source=credentials.source)
                result = Failure(Unavailable())
        else:
            if policy.cache_ttl > 0:
                self._cache[fingerprint] = (now + policy.cache_ttl, result, stamp)
            self._count_success(source, account, now, verified=True)
            self._tell(("verified", source, account, UNFAMILIAR))
            outcome = "success"
            self._log.info("authentication succeeded: source={source} user={user}",
                           user=_shown(credentials.username), source=credentials.source)
        self.outcomes[outcome] += 1
        waiters = self._inflight.pop(fingerprint, [])
        # Identical checks that waited for this one: the same answer, and a
        # wrong password they share was counted once, here.
        if waiters:
            self.outcomes["repeated" if outcome == "failure" else outcome] += len(waiters)
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)
        return result
