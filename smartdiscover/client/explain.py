"""
What a failed probe means for an administrator: the health probes' short
reasons, reworded where needed, each with how to fix it.
"""

from __future__ import annotations

import re

from smartdiscover.client.urls import netloc

_NO_MATCH = re.compile(r"certificate does not match (\S+)")


def explain(error: str, host: str, port: int) -> tuple[str, str]:
    """
    (detail, fix) for the probe error C{error} of C{host}:C{port}.
    """
    if found := _NO_MATCH.search(error):
        name = found.group(1)
        return (f"certificate does not cover {name}",
                f"add {name} to the certificate's subjectAltName, or advertise a name "
                "the certificate covers")
    where = f"{netloc(host)}:{port}"
    if "connection refused" in error:
        return (f"{where}: connection refused",
                f"start the service on {where} (and open the firewall), or stop "
                "advertising it")
    if "timed out" in error or "no answer within" in error:
        return (f"{where}: {error}",
                f"check that {where} is reachable (firewall, routing) and answers")
    if "cannot resolve" in error:
        return error, f"publish an A (and AAAA) record for {host}"
    if "expired" in error or "not valid before" in error:
        return error, f"renew the certificate of {host}"
    if "not trusted" in error:
        return (error, "use a certificate from a CA that clients trust (or name the "
                "deployment's CA with --ca)")
    if "STARTTLS" in error or "STLS" in error:
        return (f"{where}: {error}",
                "enable STARTTLS on the server, or advertise the security it really uses")
    if error.startswith("HTTP 5"):
        return f"{where}: {error}", f"look at the logs of the web server on {where}"
    return f"{where}: {error}", f"check the service on {where}"
