"""
The C{smartdiscover} administration command.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from smartdiscover.config import ConfigError, load
from smartdiscover.config.address import AddressError, normalize_domain
from smartdiscover.config.hostname import rename_host
from smartdiscover.config.model import Model


def check_config(path: str) -> int:
    """
    Print every problem of the file at C{path}; 0 when there are none.
    """
    try:
        model = load(path)
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 1
    print(f"{model.source}: OK ({len(model.domains)} domain(s), {len(model.users)} user(s))")
    return 0


def set_hostname(path: str, new: str, old: str | None, dry_run: bool) -> int:
    """
    Rename the public host name (or C{old}) to C{new} in every host field
    and URL, print the diff, and write the file only if the result is valid.
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
    for line in difflib.unified_diff(text.splitlines(keepends=True),
                                     renamed.splitlines(keepends=True),
                                     fromfile=str(config), tofile=str(config)):
        sys.stdout.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    try:
        model = _validate(config, renamed)
    except ConfigError as e:
        print(f"smartdiscover: the result would not be valid; {config} is unchanged",
              file=sys.stderr)
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 1
    if dry_run:
        return 0
    _write(config, renamed)
    print(f"{config}: written; send SIGHUP to the running service to apply it")
    _warn_about_certificate(model, new)
    return 0


def _validate(config: Path, text: str) -> Model:
    """
    Load C{text} as if it were the file at C{config} (same directory, so
    relative paths resolve the same way).
    """
    fd, name = tempfile.mkstemp(prefix=".sd-", suffix=".ini", dir=config.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return load(name)
    except ConfigError as e:
        scratch = str(Path(name).absolute())
        raise ConfigError([dataclasses.replace(p, file=str(config.absolute()))
                           if p.file == scratch else p for p in e.problems]) from None
    finally:
        os.unlink(name)


def _write(config: Path, text: str) -> None:
    """
    Replace the file in one step, keeping its permissions.
    """
    fd, name = tempfile.mkstemp(prefix=".sd-", suffix=".ini", dir=config.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(name, config.stat().st_mode & 0o7777)
        os.replace(name, config)
    except BaseException:
        os.unlink(name)
        raise


def _warn_about_certificate(model: Model, host: str) -> None:
    from cryptography import x509
    from service_identity import VerificationError
    from service_identity.cryptography import verify_certificate_hostname

    try:
        certificate = x509.load_pem_x509_certificate(model.https.certificate.read_bytes())
        verify_certificate_hostname(certificate, host)
    except VerificationError:
        print(f"warning: the certificate {model.https.certificate} does not cover {host}",
              file=sys.stderr)
    except (OSError, ValueError):
        pass  # no certificate yet: a development one is made at start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartdiscover", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path")
    rename = commands.add_parser(
        "set-hostname", help="rename the public host name in every host field and URL")
    rename.add_argument("new", metavar="NEW")
    rename.add_argument("--config", default="etc/sd.ini", metavar="PATH")
    rename.add_argument("--from", dest="old", metavar="OLD",
                        help="the host to replace (default: [server] public_hostname)")
    rename.add_argument("--dry-run", action="store_true", help="print the diff only")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args.path)
    return set_hostname(args.config, args.new, args.old, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
