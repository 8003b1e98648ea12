"""`python -m device.panel set-password [--config FILE]`: store the panel password hashed."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m device.panel", description="ScopeHive panel tools")
    sub = parser.add_subparsers(dest="command", required=True)
    setpw = sub.add_parser("set-password", help="store the panel password (werkzeug hash) in the data dir")
    setpw.add_argument("--config", help="device config file (YAML), for data_dir and panel.password_file")
    setpw.add_argument("--stdin", action="store_true", help="read the password from standard input")
    args = parser.parse_args(argv)

    from device.config import ConfigError, load_config
    from device.panel.security import password_file, write_password_hash

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass("New panel password: ")
    target = password_file(config.panel, Path(config.data_dir) / "panel")
    try:
        write_password_hash(target, password)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"panel password stored (hashed) in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
