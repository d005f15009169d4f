"""
The C{smartdiscover} administration command.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence, TextIO

from smartdiscover.auth.hashing import hash_password
from smartdiscover.certs.acme.served import load_served_certificates
from smartdiscover.certs.names import server_name
from smartdiscover.certs.report import summary as certificate_summary
from smartdiscover.certs.report import warnings as certificate_warnings
from smartdiscover.certs.selection import CertificateSet
from smartdiscover.client.main import add_arguments as add_probe_arguments
from smartdiscover.client.main import run as run_probe
from smartdiscover.config import ConfigError, ConfigProblem, load
from smartdiscover.config.address import AddressError, normalize_domain
from smartdiscover.config.admin import (
    account_name,
    accounts_text,
    admin_accounts_path,
    parse_accounts,
    remove_account,
    set_account,
)
from smartdiscover.config.edit import unified_diff, validate_text, write_text
from smartdiscover.config.hostname import hosts_entries, mentions, rename_host
from smartdiscover.config.passwd_file import set_password
from smartdiscover.config.public import port_warnings
from smartdiscover.config.model import Model
from smartdiscover.web.devcert import (
    create_development_certificate,
    development_names,
    own_hostnames,
)


def check_config(path: str) -> int:
    """
    Print every problem of the file at C{path}, its certificates' included;
    0 when there are none.  Warnings (settings that load but that clients
    will not use, certificates that expire or leave a served name
    uncovered) are printed too, and do not change the status; so is one
    line per certificate with its names and expiry.
    """
    try:
        model = load(path)
        certificates, pending = _certificates(model)
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 1
    for key, message in port_warnings(model):
        print(ConfigProblem(str(model.source), "server", key, f"warning: {message}"),
              file=sys.stderr)
    now = datetime.now(timezone.utc)
    for problem in certificate_warnings(certificates, model, now):
        if pending and problem.section == "server" and problem.key == "https":
            continue  # the development certificate: made at start, for a year
        print(problem, file=sys.stderr)
    for certificate in (certificates.default, *certificates.certificates):
        if not (pending and certificate is certificates.default):
            print(certificate_summary(certificate, now))
    print(f"{model.source}: OK ({len(model.domains)} domain(s), {len(model.users)} user(s))")
    return 0


def _certificates(model: Model) -> tuple[CertificateSet, bool]:
    """
    The certificates C{model} serves, and whether the default is still to
    be made: when both of [server] https's files are missing the service
    creates a development certificate at start, so one like it stands in
    (for the names it will cover), and nothing is said about it.

    @raise ConfigError: a certificate that cannot be served.
    """
    https = model.https
    if https.certificate.exists() or https.private_key.exists():
        return load_served_certificates(model), False
    with tempfile.TemporaryDirectory(prefix="sd-check-") as scratch:
        certificate, key = Path(scratch) / "server.crt", Path(scratch) / "server.key"
        create_development_certificate(certificate, key, development_names(
            model.public_hostname, model.domains, own_hostnames(model)))
        stand_in = dataclasses.replace(model, https=dataclasses.replace(
            https, certificate=certificate, private_key=key))
        return load_served_certificates(stand_in), True


def set_hostname(path: str, new: str, old: str | None, dry_run: bool) -> int:
    """
    Rename the public host name (or C{old}) to C{new} in every host field
    and URL and in its [hosts] entry (L{rename_host}), print the diff, and
    write the file only if the result is valid.
    """
    config = Path(path)
    try:
        new = normalize_domain(new)
        if old is None:
            old = load(config).public_hostname
        old = normalize_domain(old)
    except AddressError as e:
        print(f"smartdiscover: not a host name: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"smartdiscover: {config} is not valid now; name the host to replace "
              "with --from", file=sys.stderr)
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 1
    text = config.read_bytes().decode("utf-8")  # keep CRLF as it is
    renamed = rename_host(text, old, new)
    if renamed == text:
        print(f"{config}: nothing uses {old}")
        return 0
    sys.stdout.write(unified_diff(config, text, renamed))
    entries = hosts_entries(text)
    if old != new and old in entries and new in entries:
        print(f"note: [hosts] already has an entry for {new}: it and the entry for {old} "
              f"are kept as they are (remove the one for {old} once nothing needs it)",
              file=sys.stderr)
    left = mentions(renamed, old) if old != new else []
    if left:
        print(f"note: {old} is still named where it is no host field, left as written:",
              file=sys.stderr)
        for number, line in left:
            print(f"  line {number}: {line}", file=sys.stderr)
    try:
        model = validate_text(config, renamed)
    except ConfigError as e:
        print(f"smartdiscover: the result would not be valid; {config} is unchanged",
              file=sys.stderr)
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 1
    if dry_run:
        return 0
    write_text(config, renamed)
    print(f"{config}: written; send SIGHUP to the running service to apply it")
    _warn_about_certificate(model, new)
    return 0


def _warn_about_certificate(model: Model, host: str) -> None:
    from cryptography import x509
    from service_identity import VerificationError
    from service_identity.cryptography import verify_certificate_hostname

    try:
        certificate = x509.load_pem_x509_certificate(model.https.certificate.read_bytes())
        verify_certificate_hostname(certificate, host)
    except VerificationError:
        if not _covered_by_certificates(model, host):
            print(f"warning: the certificate {model.https.certificate} does not cover {host}",
                  file=sys.stderr)
    except (OSError, ValueError):
        pass  # no certificate yet: a development one is made at start


def _covered_by_certificates(model: Model, host: str) -> bool:
    """
    Whether one of [certificates] or of ACME's covers C{host}, so SNI serves it.
    """
    name = server_name(host.encode("ascii", "replace"))
    if not (model.certificates or model.acme) or name is None:
        return False
    try:
        return load_served_certificates(model).covering(name) is not None
    except ConfigError:
        return False


def read_new_password(stdin: TextIO | None = None) -> str:
    """
    Twice from a terminal, without echo; once from anything else (a pipe).
    """
    if stdin is None:
        stdin = sys.stdin
    if stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


def set_user_password(address: str, passwd_file: str | None, config: str, name: str | None,
                      scheme: str) -> int:
    """
    Add C{address} to the password file, or give it a new password.
    """
    case_sensitive = False
    if passwd_file is None:
        try:
            model = load(config)
        except ConfigError as e:
            print(f"smartdiscover: {config} is not valid; name the file with --file",
                  file=sys.stderr)
            for problem in e.problems:
                print(problem, file=sys.stderr)
            return 1
        if model.auth.passwd_file is None:
            print(f"smartdiscover: {config} has no [auth] passwd_file", file=sys.stderr)
            return 1
        passwd_file, case_sensitive = str(model.auth.passwd_file), model.auth.case_sensitive_local
    path = Path(passwd_file)
    try:
        password = read_new_password()
        if not password:
            raise ValueError("empty password")
        hashed = hash_password(password.encode("utf-8"), scheme).decode("ascii")
        text = path.read_bytes().decode("utf-8") if path.exists() else ""
        text, existed = set_password(text, address, hashed, name, case_sensitive)
    except (ValueError, AddressError, UnicodeDecodeError) as e:
        print(f"smartdiscover: {e}", file=sys.stderr)
        return 1
    write_text(path, text, mode=0o600)
    print(f"{path}: {'updated' if existed else 'added'} {address}; "
          "send SIGHUP to the running service to apply it")
    return 0


def set_admin_password(name: str, config: str, remove: bool, scheme: str = "bcrypt") -> int:
    """
    Add the administrator C{name} to the C{[admin] accounts} file of the
    configuration at C{config} (created, mode 0600, when missing), give it
    a new password, or (C{remove}) take it out; every other line is kept.
    """
    try:
        account_name(name)
    except ValueError as e:
        print(f"smartdiscover: {e}", file=sys.stderr)
        return 2
    try:
        path = admin_accounts_path(Path(config))
        text = accounts_text(path)
        if remove:
            text, existed = remove_account(text, name), True
        else:
            password = read_new_password()
            if not password:
                raise ValueError("empty password")
            hashed = hash_password(password.encode("utf-8"), scheme).decode("ascii")
            text, existed = set_account(text, name, hashed)
    except ValueError as e:
        print(f"smartdiscover: {e}", file=sys.stderr)
        return 1
    try:
        write_text(path, text, mode=0o600)
    except OSError as e:
        print(f"smartdiscover: cannot write {path}: {e.strerror}", file=sys.stderr)
        return 1
    done = "removed" if remove else "updated" if existed else "added"
    print(f"{path}: {done} administrator {name.casefold()}; "
          "send SIGHUP to the running service to apply it")
    for number, problem in parse_accounts(text)[1]:
        print(f"warning: {path}:{number}: {problem}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartdiscover", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path")
    rename = commands.add_parser(
        "set-hostname",
        help="rename the public host name in every host field and URL, and its [hosts] entry")
    rename.add_argument("new", metavar="NEW")
    rename.add_argument("--config", default="etc/sd.ini", metavar="PATH")
    rename.add_argument("--from", dest="old", metavar="OLD",
                        help="the host to replace (default: [server] public_hostname)")
    rename.add_argument("--dry-run", action="store_true", help="print the diff only")
    passwd = commands.add_parser(
        "passwd", help="add a user to the password file or change a password (read from "
                       "the terminal twice, or once from standard input)")
    passwd.add_argument("address", metavar="ADDRESS")
    passwd.add_argument("--file", metavar="PATH", help="default: [auth] passwd_file")
    passwd.add_argument("--config", default="etc/sd.ini", metavar="PATH")
    passwd.add_argument("--name", help="the display name clients show")
    passwd.add_argument("--scheme", choices=("bcrypt", "argon2id"), default="bcrypt")
    admin_passwd = commands.add_parser(
        "admin-passwd", help="add an administrator of the web console or change a password "
                             "(read from the terminal twice, or once from standard input), "
                             "in the [admin] accounts file")
    admin_passwd.add_argument("admin_name", metavar="NAME")
    admin_passwd.add_argument("--config", default="etc/sd.ini", metavar="PATH")
    admin_passwd.add_argument("--remove", action="store_true",
                              help="take the administrator out of the file instead")
    admin_passwd.add_argument("--scheme", choices=("bcrypt", "argon2id"), default="bcrypt")
    probe = commands.add_parser(
        "probe", help="discover an address's settings the way clients do and check them",
        description="Walk the Autodiscover candidates for ADDRESS, check every advertised "
                    "endpoint and the domain's SRV records; exit status 0 only when every "
                    "check passed, 1 otherwise, 2 for usage errors.")
    add_probe_arguments(probe)
    args = parser.parse_args(argv)
    if args.command == "probe":
        return run_probe(args)
    if args.command == "check-config":
        return check_config(args.path)
    if args.command == "passwd":
        return set_user_password(args.address, args.file, args.config, args.name, args.scheme)
    if args.command == "admin-passwd":
        return set_admin_password(args.admin_name, args.config, args.remove, args.scheme)
    return set_hostname(args.config, args.new, args.old, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
