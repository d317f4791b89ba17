"""A local mailbox for `make run`: an SMTP server on loopback that keeps each
message as a file under var/mailbox/, so clinicians' notices can be seen
without a mail server. Production sets SMTP_HOST and does not run this.

    python -m clinic.mail.dev_mailbox      # listens on SMTP_HOST:SMTP_PORT
"""

import signal
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from clinic.settings import get_settings


class FolderMailbox:
    """aiosmtpd handler: one .eml file per message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns()}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def main() -> None:
    settings = get_settings()
    folder = settings.var_dir / "mailbox"
    controller = Controller(FolderMailbox(folder), hostname=settings.smtp_host, port=settings.smtp_port)
    controller.start()
    print(f"dev mailbox: {settings.smtp_host}:{settings.smtp_port} -> {folder}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
