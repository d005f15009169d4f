"""
C{smartdiscover probe ADDRESS}: discover the settings of ADDRESS the way
clients do, check every advertised endpoint and the domain's SRV records,
and report each check with its fix.  Exit status 0 only when every check
passed, 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from smartdiscover.client.report import Check, Report, line
from smartdiscover.client.urls import Ports
from smartdiscover.config.address import AddressError, split_address

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

    from smartdiscover.client.steps import Options
    from smartdiscover.health.conversation import IProbeReactor
    from smartdiscover.health.probes import Target


class UsageError(Exception):
    """
    The command line cannot be run: exit status 2.
    """


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="ADDRESS", help="the e-mail address to discover")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input "
                             "(default: ask on the terminal)")
    parser.add_argument("--resolver", metavar="IP[:PORT]",
                        help="ask only this DNS server (default: the system's resolvers "
                             "and hosts file)")
    parser.add_argument("--ca", metavar="FILE",
                        help="PEM certificates to trust instead of the system's roots")
    parser.add_argument("--all", action="store_true",
                        help="try every candidate, not only up to the first success")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--allow-cross-domain", action="store_true",
                        help="send credentials to hosts outside the address's domain")
    parser.add_argument("--port", type=_port, default=443, metavar="N",
                        help="connect https URLs that name no port, and SRV records' port "
                             "443, to N instead of 443 (tests, or beside a service behind "
                             "a port forward)")
    parser.add_argument("--http-port", type=_port, default=80, metavar="N",
                        help="the same for http:// URLs, instead of 80")
    parser.add_argument("--timeout", type=_seconds, default=10.0, metavar="SECONDS",
                        help="the limit of every single step (default 10)")


def _port(text: str) -> int:
    number = int(text)
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a port")
    return number


def _seconds(text: str) -> float:
    number = float(text)
    if not 0 < number <= 300:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 300 seconds")
    return number


def load_trust(path: str) -> IOpenSSLTrustRoot:
    """
    The certificates in the PEM file C{path} as a trust root.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from twisted.internet.ssl import Certificate, trustRootFromCertificates

    try:
        certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except ValueError:
        raise UsageError(f"{path} holds no PEM certificate") from None
    return trustRootFromCertificates(
        [Certificate.loadPEM(c.public_bytes(Encoding.PEM)) for c in certificates])


def read_password(from_stdin: bool, address: str, stdin: TextIO | None = None) -> str:
    if from_stdin:
        first = (stdin or sys.stdin).readline()
        if not first:  # the input ended before any line
            raise EOFError
        return first.rstrip("\r\n")
    return getpass.getpass(f"Password for {address}: ")


def run(args: argparse.Namespace) -> int:
    """
    Run the probe for the parsed C{args}; the exit status.
    """
    from twisted.internet.task import react

    from smartdiscover.client.resolve import parse_server
    from smartdiscover.client.steps import Options

    try:
        try:
            split_address(args.address)
        except AddressError as e:
            raise UsageError(f"{args.address!r} is not an e-mail address: {e}") from None
        try:
            server = parse_server(args.resolver) if args.resolver else None
        except ValueError:
            raise UsageError(f"--resolver {args.resolver!r} is not IP[:PORT]") from None
        trust = load_trust(args.ca) if args.ca else None
    except UsageError as e:
        print(f"smartdiscover probe: {e}", file=sys.stderr)
        return 2
    try:
        password = read_password(args.password_stdin, args.address)
    except (EOFError, KeyboardInterrupt):
        print("smartdiscover probe: no password", file=sys.stderr)
        return 2
    options = Options(args.address, password, Ports(args.port, args.http_port),
                      args.timeout, args.all, args.allow_cross_domain)
    try:
        react(_probe, (options, server, trust, args.json))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    return 1  # react always exits


def _show(check: Check) -> None:
    try:
        print(line(check), flush=True)
    except BrokenPipeError:  # the reader (e.g. head) is gone: keep checking quietly
        sys.stdout = open(os.devnull, "w")


async def _probe(reactor: IProbeReactor, options: Options, server: tuple[str, int] | None,
                 trust: IOpenSSLTrustRoot | None, as_json: bool) -> None:
    from smartdiscover.client.checks import (
        check_endpoints,
        socket_endpoint,
        srv_endpoints,
        url_endpoints,
    )
    from smartdiscover.client.resolve import DNS, HostnameResolver, make_resolver
    from smartdiscover.client.steps import Discovery

    report = Report(show=None if as_json else _show)
    lookups = DNS(make_resolver(server, reactor), reactor, options.timeout)
    if server is not None:  # connections go where the DNS lines say
        reactor.installNameResolver(HostnameResolver(lookups))
    found = await Discovery(options, report, lookups, reactor, trust).run()
    if found is None:
        report.failed("discovery", f"no candidate gave settings for {options.address}",
                      "fix the first failed step above; clients try the same order")
    else:
        domain = split_address(found.address)[1]
        endpoints = []
        for protocol in found.answer.protocols:
            endpoint = socket_endpoint(protocol, domain)
            if endpoint is not None:
                endpoints.append(endpoint)
            endpoints += url_endpoints(protocol, options.ports, report)
        seen: set[Target] = set()
        await check_endpoints(endpoints, report, reactor, trust, options.timeout, seen)
        extra = await srv_endpoints(found.answer.protocols, domain, lookups, report)
        await check_endpoints(extra, report, reactor, trust, options.timeout, seen)
    if as_json:
        report.write_json(sys.stdout, address=options.address,
                          url=found.url if found else None)
    else:
        where = f"; settings from {found.url}" if found else ""
        print(f"{report.summary()}{where}", flush=True)
    raise SystemExit(report.exit_status())
