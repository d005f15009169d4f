"""
The C{smartdiscover} administration command.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from smartdiscover.config import ConfigError, load


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartdiscover", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args.path)
    return 2  # pragma: no cover  (argparse rejects unknown commands)


if __name__ == "__main__":
    sys.exit(main())
