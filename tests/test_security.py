"""Security promises of SECURITY.md that no other module checks: headers, loopback-only
internal services, HSTS in production, and no secret in the repository."""

import dataclasses
import re
import subprocess
import uuid
from pathlib import Path
from typing import Set

import pytest
from sanic import Sanic

from clinic import settings as settings_module
from clinic.console.app import create_console_app
from clinic.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent


def _listening_addresses(port: int) -> Set[str]:
    """The local addresses a TCP port listens on (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, _remote, state = line.split()[1:4]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}


def test_internal_services_listen_on_loopback_only(stack):
    """Rasa (with its HTTP API), the action server and the console are not reachable from outside;
    in the default set-up the web app is on loopback too (a proxy in front makes it public)."""
    stack.start_console()
    for name, port in (("rasa", stack.rasa_port), ("actions", stack.actions_port),
                       ("console", stack.console_port), ("web", stack.web_port)):
        addresses = _listening_addresses(port)
        assert addresses, f"{name} is not listening on {port}"
        assert addresses <= LOOPBACK, f"{name} listens on {addresses}"


def test_the_procfile_binds_every_service_to_loopback():
    procfile = (ROOT / "Procfile").read_text()
    assert "--interface 127.0.0.1" in procfile  # Rasa's server and HTTP API
    assert "SANIC_HOST=127.0.0.1" in procfile  # the action server
    assert settings_module.Settings.__dataclass_fields__["console_host"].default == "127.0.0.1"


@pytest.fixture
def apps(clinic_env, monkeypatch):
    Sanic.test_mode = True

    def make(hsts: int = 0):
        monkeypatch.setenv("HSTS_SECONDS", str(hsts))
        settings_module.get_settings.cache_clear()
        s = settings_module.get_settings()
        suffix = uuid.uuid4().hex[:8]
        return create_app(s, rasa=object(), name=f"web_sec_{suffix}"), create_console_app(s, name=f"console_sec_{suffix}")

    return make


def test_both_apps_send_a_strict_csp_and_refuse_framing(apps):
    web, console = apps()
    for app, path in ((web, "/"), (console, "/login")):
        _, response = app.test_client.get(path)
        csp = response.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers  # off unless behind HTTPS


def test_hsts_is_sent_by_both_apps_when_the_setting_is_on(apps):
    web, console = apps(hsts=31536000)
    for app, path in ((web, "/health"), (console, "/login")):
        _, response = app.test_client.get(path)
        assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def test_the_hsts_setting_is_a_number_of_seconds():
    base = settings_module.Settings(
        settings_dir=ROOT / "settings", var_dir=ROOT / "var", clinic_db_url="sqlite:///x.db", rasa_url="http://x",
        web_host="127.0.0.1", web_port=8000, cookie_secure=True, max_message_chars=2000, max_body_bytes=65536,
    )
    assert base.hsts_header is None
    assert dataclasses.replace(base, hsts_seconds=600).hsts_header == "max-age=600; includeSubDomains"


SECRET_LOOKING = re.compile(
    rb"-----BEGIN [A-Z ]*PRIVATE KEY-----|[A-Za-z0-9_-]{43}=(?![A-Za-z0-9])|AKIA[0-9A-Z]{16}|password\s*=\s*['\"][^'\"]{6,}"
)


def test_no_secret_or_runtime_data_is_tracked_by_git():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    runtime = [f for f in tracked
               if f.startswith(("var/", "models/")) or f.endswith((".db", "secret_key", "encryption_key", "rasa_token"))]
    assert runtime == []
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in (".png", ".whl", ".gz") or not path.is_file():
            continue
        if SECRET_LOOKING.search(path.read_bytes()):
            offenders.append(name)
    # test files may hold made-up passwords for made-up staff accounts; nothing else may look like a secret
    assert [f for f in offenders if not f.startswith("tests/")] == []
