"""
The ports clients are told about, when they differ from the ports bound
here: C{[server] public_https_port} and C{public_http_port} (a container's
published port, a port forward, a load balancer in front).

They only change what answers name (the Autodiscover URL, the
C{_autodiscover._tcp} SRV record, the plain-HTTP redirects), so a reload
applies them; the listeners stay where they are.  They are not per domain:
one HTTPS listener serves every domain, behind one forward.
"""

from __future__ import annotations

from dataclasses import replace

from smartdiscover.config import values
from smartdiscover.config.model import HTTPSListener, Model, TCPListener
from smartdiscover.config.section import Section

PUBLIC_KEYS = ("public_https_port", "public_http_port")
STANDARD_HTTPS, STANDARD_HTTP = 443, 80
PRIVILEGED_BELOW = 1024  # binding under this needs root or CAP_NET_BIND_SERVICE


def https_origin(host: str, port: int) -> str:
    """
    C{https://HOST[:PORT]}, the port left out when it is 443, an IPv6
    address in brackets.
    """
    netloc = f"[{host}]" if ":" in host else host
    return f"https://{netloc}" + ("" if port == STANDARD_HTTPS else f":{port}")


def published(server: Section, https: HTTPSListener | None,
              http: TCPListener | None) -> tuple[HTTPSListener | None, TCPListener | None]:
    """
    The listeners of C{[server]} with their public ports, read from
    C{server} (problems reported there).
    """
    public_https = _public_port(server, "public_https_port")
    public_http = _public_port(server, "public_http_port")
    if https is not None and public_https is not None:
        https = replace(https, published_port=public_https)
    if public_http is not None:
        if http is not None:
            http = replace(http, published_port=public_http)
        elif not server.values.get("http", "").strip():  # a bad http is reported already
            server.report(server.name, "public_http_port",
                          "set, but [server] http is not: there is no plain-HTTP listener "
                          "to publish (add http, or remove this line)")
    return https, http


def _public_port(server: Section, key: str) -> int | None:
    raw = server.values.get(key)
    if raw is not None and not raw.strip():
        server.report(server.name, key, "empty: give the port clients reach (1-65535), "
                      "or remove the line to publish the listening port")
        return None
    port: int | None = server.get(key, values.port)
    return port


def looks_deployed(model: Model) -> bool:
    """
    Whether C{model} looks like a real deployment rather than a test bed: a
    listener on a privileged port (only root or a granted capability binds
    one), or a public port written in the file (someone put a forward in
    front).
    """
    listening = [model.https.port]
    if model.http is not None:
        listening.append(model.http.port)
    if model.dns is not None:
        listening.append(model.dns.listen.port)
    written = [model.https.published_port,
               model.http.published_port if model.http is not None else None]
    return (any(port < PRIVILEGED_BELOW for port in listening)
            or any(port is not None for port in written))


def port_warnings(model: Model) -> list[tuple[str, str]]:
    """
    (C{[server]} key, message) for each public port that clients will not
    use, in a model that L{looks_deployed}: HTTPS other than 443, plain
    HTTP other than 80.
    """
    if not looks_deployed(model):
        return []
    warnings = []
    https = model.https.public_port
    if https != STANDARD_HTTPS:
        warnings.append((
            "public_https_port",
            f"clients are told HTTPS port {https}: exchangelib skips _autodiscover._tcp SRV "
            "records whose port is not 443 and Outlook wants 443 there, and clients try "
            "https://autodiscover.<domain>/ and https://autoconfig.<domain>/ on 443 only; "
            "if a port forward or proxy publishes 443, set public_https_port = 443"))
    if model.http is not None and model.http.public_port != STANDARD_HTTP:
        warnings.append((
            "public_http_port",
            f"the plain-HTTP listener is reached on port {model.http.public_port}, but "
            "Outlook's redirect probe (http://autodiscover.<domain>/) and Thunderbird's "
            "fallback (http://autoconfig.<domain>/) use port 80 only; if a port forward "
            "publishes 80, set public_http_port = 80"))
    return warnings
