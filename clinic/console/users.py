"""Staff accounts from the command line (no default password exists anywhere).

    python -m clinic.console.users create NAME --role admin|clinician|support
    python -m clinic.console.users set-password NAME

The password is asked twice without echo (or read from stdin when not a terminal).
"""

import argparse
import getpass
import sys
from typing import List, Optional

from clinic import db
from clinic.console import auth
from clinic.settings import get_settings


def _password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise auth.StaffError("the two passwords differ")
    return first


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinic.console.users")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a staff account")
    create.add_argument("username")
    create.add_argument("--role", choices=auth.ROLES, required=True)
    reset = sub.add_parser("set-password", help="set a new password (and unlock)")
    reset.add_argument("username")
    args = parser.parse_args(argv)
    engine = db.get_engine(get_settings().clinic_db_url)
    try:
        if args.command == "create":
            auth.create_user(engine, args.username, _password(), args.role)
            print(f"created {args.username} ({args.role})")
        else:
            auth.set_password(engine, args.username, _password())
            print(f"password set for {args.username}")
    except auth.StaffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
