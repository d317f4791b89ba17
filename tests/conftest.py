"""Shared fixtures: one event loop, one trained model and one spaCy model per session.

Loading the Rasa agent costs about 30 s (TensorFlow), so it is loaded once and
shared; coroutines run on one session-scoped loop (pytest-asyncio's loops
clash with Sanic's uvloop).
"""

import asyncio
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "clinic.tar.gz"

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


@pytest.fixture(scope="session")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def agent(loop: asyncio.AbstractEventLoop) -> Any:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` (make test does it)")
    from rasa.core.agent import Agent

    from clinic.rasa_runtime import patches

    patches.install()  # as clinic.rasa_runtime.rasa_launch does (none when CLINIC_RASA_PATCHES=0)
    return Agent.load(str(MODEL))


@pytest.fixture(scope="session")
def parse(agent: Any, loop: asyncio.AbstractEventLoop) -> Any:
    def _parse(text: str) -> dict:
        return loop.run_until_complete(agent.parse_message(text))

    return _parse


@pytest.fixture(scope="session")
def nlp() -> Any:
    import spacy

    from clinic.nlu.spacy_model import package_model_dir

    return spacy.load(package_model_dir(), disable=["parser"])


@pytest.fixture
def clinic_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings pointing at a fresh var/ folder and clinic DB for one test."""
    from clinic.storage import db
    from clinic import settings

    monkeypatch.setenv("CLINIC_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CLINIC_DB_URL", f"sqlite:///{tmp_path / 'var' / 'clinic.db'}")
    settings.get_settings.cache_clear()
    yield tmp_path
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()


class SmtpCollector:
    """aiosmtpd handler that keeps the messages it receives."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpCollector]:
    from aiosmtpd.controller import Controller

    from tests.stack import free_port

    collector = SmtpCollector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    collector.port = controller.port
    yield collector
    controller.stop()


@pytest.fixture(scope="session")
def embed_port() -> int:
    """The port of a second site that embeds the widget (cross-origin tests)."""
    from tests.stack import free_port

    return free_port()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpCollector, embed_port: int) -> Iterator[Any]:
    """Rasa server, action server and web app, as `make run` starts them (once per session)."""
    from tests.stack import Stack

    import shutil

    canned = tmp_path_factory.mktemp("settings") / "canned_replies.yml"  # edited by the console's tests, not the repo's
    shutil.copy(Path(__file__).resolve().parent.parent / "settings" / "canned_replies.yml", canned)
    s = Stack(
        tmp_path_factory.mktemp("stack"),
        extra_env={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "CONSOLE_URL": "http://console.test",
            "WIDGET_ALLOWED_ORIGINS": f"http://127.0.0.1:{embed_port}",
            # every browser test signs staff in from this one address, module after module: the
            # sign-in limit itself is tested in tests/test_console_auth.py
            "LOGIN_ATTEMPTS": "200/2",
            "CANNED_REPLIES_FILE": str(canned),
        },
    )
    try:
        s.start_all()
        yield s
    finally:
        s.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (never a downloaded browser), one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.widget_driver import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (never a downloaded browser)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server of the test module's own, on loopback, in a folder PostgreSQL's account
    can reach when the tests run as root (skipped where PostgreSQL is not installed)."""
    import shutil
    import tempfile

    from tests.scale_stack import Postgres, missing_programs
    from tests.stack import free_port

    if {"initdb", "postgres"} & set(missing_programs()):
        pytest.skip("PostgreSQL is not installed (Debian package postgresql; .ci/run installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="clinic-pg-"))
    workdir.chmod(0o711)  # pytest's tmp is 0700
    server = Postgres(workdir / "pg", free_port(), workdir / "postgres.log", durable=False)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Pages of their own browser contexts (closed after the test), page errors kept in
    ``page.errors``: ``new_page()``, ``new_page(viewport={...})``, ``new_page(init_script=JS)``."""
    contexts = []

    def make(viewport: Any = None, init_script: Any = None) -> Any:
        ctx = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        ctx.set_default_timeout(20_000)
        if init_script:
            ctx.add_init_script(init_script)
        contexts.append(ctx)
        page = ctx.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    yield make
    for ctx in contexts:
        ctx.close()
