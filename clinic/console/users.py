"""Staff accounts from the command line (no default password exists anywhere).

    python -m clinic.console.users create NAME --role admin|clinician|support [--display-name "Dana"]
    python -m clinic.console.users set-password NAME
    python -m clinic.console.users set-display-name NAME "Dana"     ("" clears it)

The password is asked twice without echo (or read from stdin when not a terminal).
The display name is what visitors see when this person answers a live chat
("Dana from the ... team has joined the chat"); without one, the username is shown.
"""

import argparse
import getpass
import sys
from typing import List, Optional

from clinic.storage import db
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
    create.add_argument("--display-name", default=None, help="the name visitors see in a live chat")
    reset = sub.add_parser("set-password", help="set a new password (and unlock)")
    reset.add_argument("username")
    name = sub.add_parser("set-display-name", help="set the name visitors see in a live chat (\"\" clears it)")
    name.add_argument("username")
    name.add_argument("display_name")
    args = parser.parse_args(argv)
    engine = db.get_engine(get_settings().clinic_db_url)
    try:
        if args.command == "create":
            auth.clean_display_name(args.display_name)  # refused before the password is asked
            auth.create_user(engine, args.username, _password(), args.role, args.display_name)
            print(f"created {args.username} ({args.role})")
        elif args.command == "set-password":
            auth.set_password(engine, args.username, _password())
            print(f"password set for {args.username}")
        else:
            stored = auth.set_display_name(engine, args.username, args.display_name)
            print(f"display name of {args.username}: {stored}" if stored else f"display name of {args.username} cleared")
    except auth.StaffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
