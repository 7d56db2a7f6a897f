"""Mints development bearer tokens: `python -m api.tokens alice --role worker`."""

from __future__ import annotations

import argparse
import sys

from api.auth import mint_token
from runtime.settings import DEV_JWT_SECRET, get_settings


def main(argv: list[str] | None = None) -> int:
    """Prints one signed token for the given user and roles."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sub", help="user id, e.g. alice")
    parser.add_argument("--role", action="append", choices=["worker", "supervisor"], default=None)
    parser.add_argument("--name", default=None)
    parser.add_argument("--hours", type=float, default=12.0)
    args = parser.parse_args(argv)
    secret = get_settings().auth_jwt_secret or DEV_JWT_SECRET
    token = mint_token(secret, args.sub, args.role or ["worker"], args.name, int(args.hours * 3600))
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
