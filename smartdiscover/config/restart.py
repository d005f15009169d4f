"""
What a reload cannot apply: the listeners bound at start, the number of
processes, the user store and whether ACME orders stay until the service
restarts.
"""

from __future__ import annotations

from smartdiscover.config.model import Model


def unapplied(started: Model, new: Model) -> list[str]:
    """
    One message for each setting of C{new} that differs from the model the
    service started with and waits for a restart; the rest of C{new}
    applies.
    """
    messages = []
    if new.workers != started.workers:
        messages.append(f"[server] workers changed to {new.workers}: restart to apply")
    for key, before, after in (("https", _listening(started.https), _listening(new.https)),
                               ("http", _listening(started.http), _listening(new.http))):
        if before != after:
            messages.append(f"[server] {key} listens elsewhere now: restart to listen there")
    if (started.dns is None) != (new.dns is None) or (
            started.dns is not None and new.dns is not None
            and started.dns.listen != new.dns.listen):
        where = "was removed" if new.dns is None else (
            f"changed to {new.dns.listen.host}:{new.dns.listen.port}")
        messages.append(f"[server] dns {where}: restart to apply")
    if new.auth.backend != started.auth.backend:
        messages.append(f"[auth] backend changed to {new.auth.backend}: restart to apply")
    ordering = [m.acme is not None and m.acme.order for m in (started, new)]
    if ordering[0] != ordering[1]:
        change = "now orders" if ordering[1] else "no longer orders"
        messages.append(f"[acme]: this instance {change} certificates from a restart on")
    return messages


def _listening(listener: object) -> object:
    if listener is None:
        return None
    return tuple(getattr(listener, name) for name in
                 ("port", "interface", "backlog", "proxy_protocol"))
