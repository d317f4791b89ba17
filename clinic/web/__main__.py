"""`python -m clinic.web`: serve the web app (host and port from settings)."""

from clinic.settings import get_settings
from clinic.web.app import WholeRequestDeadline, create_app


def main() -> None:
    settings = get_settings()
    create_app(settings).run(
        host=settings.web_host, port=settings.web_port, access_log=False, protocol=WholeRequestDeadline
    )


if __name__ == "__main__":
    main()
