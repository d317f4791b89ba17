"""Rasa's HTTP API behind a token by default (SECURITY.md): the token is generated on first run
into var/rasa_token unless RASA_TOKEN is set, the Rasa server is started with it by
``clinic.rasa_runtime.rasa_launch`` wherever it is started (the Procfile, the test stacks, `make scale-up`),
the web app and the console send it, and it shows in no process's command line and no log."""

import os
import shlex
import stat
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Dict, List

import pytest
import requests
from sanic import Sanic

from clinic import settings as settings_module
from clinic.rasa_runtime.rasa_launch import rasa_argv
from tests.scale_stack import ScaleStack
from tests.stack import ROOT, Stack, rasa_ready, say

TOKEN = "a-token-of-the-environment-0123456789"


# --- the token: generated once, or from the environment ------------------------------------


def test_the_token_is_generated_once_into_var_private_and_reused(clinic_env, monkeypatch):
    monkeypatch.delenv("RASA_TOKEN", raising=False)
    var_dir = clinic_env / "var"
    token = settings_module.get_settings().rasa_token
    path = var_dir / "rasa_token"
    assert path.read_text().strip() == token and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert settings_module.load_rasa_token(var_dir) == token  # the same for every process
    assert settings_module.load_rasa_token(clinic_env / "another-var") != token  # random, not a constant


def test_rasa_token_in_the_environment_wins_and_nothing_is_written(clinic_env, monkeypatch):
    monkeypatch.setenv("RASA_TOKEN", f"  {TOKEN}\n")
    assert settings_module.get_settings().rasa_token == TOKEN
    assert not (clinic_env / "var" / "rasa_token").exists()


@pytest.mark.parametrize("weak", ["", "short-token"])
def test_an_empty_or_short_token_file_is_refused(clinic_env, monkeypatch, weak):
    """An empty token would be no token at all (Rasa would let `?token=` in)."""
    monkeypatch.delenv("RASA_TOKEN", raising=False)
    (clinic_env / "var").mkdir()
    (clinic_env / "var" / "rasa_token").write_text(weak)
    with pytest.raises(ValueError, match="at least 16 characters"):
        settings_module.get_settings().rasa_token


def test_a_short_token_in_the_environment_is_refused(clinic_env, monkeypatch):
    monkeypatch.setenv("RASA_TOKEN", "secret")
    with pytest.raises(ValueError, match="RASA_TOKEN"):
        settings_module.get_settings().rasa_token


def test_the_settings_never_show_the_token(clinic_env, monkeypatch):
    monkeypatch.setenv("RASA_TOKEN", TOKEN)
    assert TOKEN not in repr(settings_module.get_settings())


def test_the_web_app_and_the_console_send_the_token_of_the_settings(clinic_env, monkeypatch):
    from clinic.console.app import create_console_app
    from clinic.web.app import create_app

    monkeypatch.delenv("RASA_TOKEN", raising=False)
    Sanic.test_mode = True
    s = settings_module.get_settings()
    suffix = uuid.uuid4().hex[:8]
    web = create_app(s, name=f"web_token_{suffix}")
    console = create_console_app(s, name=f"console_token_{suffix}")
    token = (clinic_env / "var" / "rasa_token").read_text().strip()
    assert web.ctx.rasa.token == token and console.ctx.rasa.token == token


# --- the launcher ------------------------------------------------------------------------------


def test_the_launcher_adds_the_token_to_rasa_run():
    argv = rasa_argv(["--model", "m.tar.gz", "--enable-api", "--port", "5005"], TOKEN)
    assert argv == ["rasa", "run", "--model", "m.tar.gz", "--enable-api", "--port", "5005", "--auth-token", TOKEN]


@pytest.mark.parametrize("given", [["--auth-token", "x" * 20], ["--auth-token=" + "x" * 20], ["-t", "x" * 20],
                                   ["-t" + "x" * 20], ["--auth-tok", "x" * 20]])
def test_the_launcher_refuses_a_token_on_the_command_line(given):
    with pytest.raises(SystemExit, match="no --auth-token on the command line"):
        rasa_argv(["--enable-api", *given], TOKEN)


def _procfile_rasa() -> List[str]:
    servers = [shlex.split(line.split(":", 1)[1]) for line in (ROOT / "Procfile").read_text().splitlines()
               if line.startswith(("rasa:", "rasa2:"))]
    assert len(servers) == 2, "the Procfile runs two Rasa servers"
    ports = [command[command.index("--port") + 1] for command in servers]
    assert ports == ["5005", "5006"]
    without_port = [[arg for arg in command if arg not in ports] for command in servers]
    assert without_port[0] == without_port[1]  # the same in all else
    return servers[0]


def _options(command: List[str]) -> List[str]:
    return [arg for arg in command if arg.startswith("-")]


def test_the_launcher_gives_openblas_one_thread_unless_told_otherwise():
    """OpenBLAS's worker spins on sched_yield between products (a third of a core a server)."""
    import subprocess

    probe = ("import os, sys\n"
             "from clinic.rasa_runtime.rasa_launch import one_thread_each\n"
             "one_thread_each()\n"
             "import numpy\n"
             "from threadpoolctl import threadpool_info\n"
             "print(sorted({p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas'}))\n"
             "print(os.environ['TF_INTRA_OP_PARALLELISM_THREADS'], os.environ['TF_INTER_OP_PARALLELISM_THREADS'])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "TF_INTRA_OP_PARALLELISM_THREADS")}
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[1]" and out[1].split()[0] == "1"
    told = subprocess.run([sys.executable, "-c", probe], env={**env, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "2"},
                          capture_output=True, text=True, check=True).stdout.split("\n")
    assert told[0] == "[2]"


def test_every_way_of_starting_rasa_goes_through_the_launcher(tmp_path):
    """`make run` (the Procfile), the test stack, the scale stack (and so `make scale-up`, bench.py)."""
    procfile = _procfile_rasa()
    assert procfile[:3] == [".venv/bin/python", "-m", "clinic.rasa_runtime.rasa_launch"]
    (tmp_path / "one").mkdir()
    stack = Stack(tmp_path / "one").commands()["rasa"]
    scale = ScaleStack(tmp_path / "scale").commands()
    for command in (stack, scale["rasa1"], scale["rasa2"]):
        assert command[1:3] == ["-m", "clinic.rasa_runtime.rasa_launch"]
        assert _options(command) == _options(procfile)  # the same options, in the same order
    for command in (procfile, stack, scale["rasa1"]):
        assert "--enable-api" in command and command[command.index("--interface") + 1] == "127.0.0.1"
        assert not any(arg.startswith(("--auth", "-t")) for arg in command)


class _Answers(BaseHTTPRequestHandler):
    status = 401

    def do_POST(self) -> None:  # noqa: N802
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("status,ready", [(200, True), (503, False), (401, None)])
def test_the_stacks_wait_for_rasa_and_stop_at_once_when_it_refuses_the_token(status, ready):
    """A stack whose token is not the server's fails at once rather than after its timeout."""
    handler = type("Handler", (_Answers,), {"status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        if ready is None:
            with pytest.raises(RuntimeError, match="refuses the token"):
                rasa_ready(url, TOKEN)
        else:
            assert rasa_ready(url, TOKEN) is ready
    finally:
        server.shutdown()
        server.server_close()


# --- the running stack -------------------------------------------------------------------------

CID = "token-test-" + uuid.uuid4().hex[:8]
API_CALLS = [  # (method, path, body) of Rasa's HTTP API that the web app or the console use, and more
    ("GET", f"/conversations/{CID}/tracker", None),
    ("POST", f"/conversations/{CID}/tracker/events", [{"event": "slot", "name": "x", "value": None}]),
    ("POST", "/model/parse", {"text": "hello"}),
    ("GET", "/status", None),
    ("GET", "/domain", None),
    ("PUT", "/model", {"model_file": "/nonexistent.tar.gz"}),
]


@pytest.mark.parametrize("method,path,body", API_CALLS, ids=[f"{m} {p}" for m, p, _ in API_CALLS])
@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", ""], ids=["no token", "a wrong token", "empty"])
def test_rasas_api_refuses_a_request_without_the_right_token(stack, method, path, body, token):
    params = {} if token is None else {"token": token}
    resp = requests.request(method, f"{stack.rasa_url}{path}", params=params, json=body, timeout=10)
    assert resp.status_code == 401, resp.text


def test_rasas_api_answers_with_the_token(stack):
    tracker = requests.get(f"{stack.rasa_url}/conversations/{CID}/tracker", params=stack.rasa_params, timeout=10)
    assert tracker.status_code == 200 and tracker.json()["sender_id"] == CID
    parsed = requests.post(f"{stack.rasa_url}/model/parse", params=stack.rasa_params, json={"text": "hello"}, timeout=10)
    assert parsed.status_code == 200 and parsed.json()["intent"]["name"]
    status = requests.get(f"{stack.rasa_url}/status", params=stack.rasa_params, timeout=10)
    assert status.status_code == 200 and status.json()["model_file"].endswith("clinic.tar.gz")


def test_the_rest_channel_takes_no_token_in_rasa_3_6(stack):
    """Rasa 3.6's REST channel (/webhooks/rest/webhook, what the web app sends visitors' messages
    to) has no authentication: it is safe only because Rasa listens on loopback
    (test_security.test_internal_services_listen_on_loopback_only)."""
    resp = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": CID + "-rest", "message": "hello"},
                         timeout=60)
    assert resp.status_code == 200 and isinstance(resp.json(), list)


def test_the_visitor_path_works_through_the_token(stack):
    """The web app talks to Rasa's REST channel, then reads the tracker over the API (with the token)."""
    s = requests.Session()
    first = say(s, stack, "hello")
    assert first.status_code == 200 and first.json()["messages"]
    history = s.get(f"{stack.web_url}/api/history", timeout=30)
    assert history.status_code == 200, history.text
    assert [m["text"] for m in history.json()["messages"] if m.get("text")]


def _cmdlines() -> Dict[int, bytes]:
    """Every process's command line, as `ps` shows it to any user (pid -> NUL-separated arguments)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                found[int(proc.name)] = (proc / "cmdline").read_bytes()
            except OSError:  # ended meanwhile
                continue
    return found


def test_the_token_shows_in_no_command_line_and_no_log(stack):
    token = stack.rasa_token
    assert requests.post(f"{stack.rasa_url}/model/parse", params=stack.rasa_params, json={"text": "hi"},
                         timeout=10).ok  # a request with the token in its URL, which an access log would show
    cmdlines = _cmdlines()
    assert b"clinic.rasa_runtime.rasa_launch" in cmdlines[stack.procs["rasa"].pid]  # the Rasa server is among them
    assert [pid for pid, cmdline in cmdlines.items() if token.encode() in cmdline] == []  # pids: no token shown
    logs = list(stack.workdir.glob("*.log"))
    assert logs
    assert [log.name for log in logs if token in log.read_text(errors="replace")] == []


def test_the_token_file_of_the_running_stack_is_private(stack):
    if os.environ.get("RASA_TOKEN"):
        pytest.skip("RASA_TOKEN is set: no token file")
    path = stack.var_dir / "rasa_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == stack.rasa_token
