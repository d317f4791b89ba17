"""`python -m clinic.console`: serve the staff console (CONSOLE_HOST:CONSOLE_PORT, loopback by default)."""

from clinic.storage import db
from clinic.console import auth
from clinic.console.app import create_console_app
from clinic.settings import get_settings


def main() -> None:
    settings = get_settings()
    if auth.user_count(db.get_engine(settings.clinic_db_url)) == 0:
        print(
            "No staff account yet. Create the first admin with:\n"
            "    make staff-user USERNAME=<name> ROLE=admin\n"
            "(or: .venv/bin/python -m clinic.console.users create <name> --role admin)",
            flush=True,
        )
    create_console_app(settings).run(host=settings.console_host, port=settings.console_port, access_log=False)


if __name__ == "__main__":
    main()
