"""Starts the real stack (Rasa server, action server, web app) for end-to-end tests.

Each process gets free loopback ports and a private var/ folder, so the tests
never touch a running `make run`. The Rasa server starts as the Procfile starts it
(``python -m clinic.rasa_runtime.rasa_launch``): its HTTP API wants the token of the stack's var/
(``Stack.rasa_token``; ``Stack.rasa_params`` for a request made by hand).
"""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import requests
import yaml

from clinic.settings import load_action_token

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def load_encryption_key_of(var_dir: Path) -> bytes:
    """The key of ``var_dir`` (made there on first use), whatever this process's environment says."""
    from clinic.settings import load_encryption_key

    saved = os.environ.pop("CLINIC_ENCRYPTION_KEY", None)
    try:
        return load_encryption_key(var_dir)
    finally:
        if saved is not None:
            os.environ["CLINIC_ENCRYPTION_KEY"] = saved


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_staffing(path: Path, staffed: bool) -> None:
    """A staffing file open all week round the clock, or closed all week."""
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    hours = '["00:00-24:00"]' if staffed else "[]"
    text = "time_zone: America/New_York\nhours:\n" + "".join(f"  {d}: {hours}\n" for d in days) + "holidays: []\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    # a rewrite within the same second must still be seen as a change
    stamp = time.time()
    os.utime(path, (stamp, stamp))


@dataclass
class Stack:
    workdir: Path
    rasa_port: int = field(default_factory=free_port)
    actions_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    console_port: int = field(default_factory=free_port)
    procs: Dict[str, subprocess.Popen] = field(default_factory=dict)
    extra_env: Dict[str, str] = field(default_factory=dict)

    @property
    def var_dir(self) -> Path:
        return self.workdir / "var"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    @property
    def tracker_db_url(self) -> str:
        return f"sqlite:///{self.var_dir / 'tracker.db'}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def clinic_db_url(self) -> str:
        return f"sqlite:///{self.var_dir / 'clinic.db'}"

    @property
    def rasa_token(self) -> str:
        """The token of Rasa's HTTP API, as every process of the stack reads it (made on first use)."""
        from clinic.settings import load_rasa_token

        given = self.env().get("RASA_TOKEN", "").strip()
        return given or load_rasa_token(self.var_dir)

    @property
    def rasa_params(self) -> Dict[str, str]:
        """The query parameters a request to Rasa's HTTP API needs (the token)."""
        return {"token": self.rasa_token}

    @property
    def database_key(self) -> str:
        """The key the stack's processes open its SQLite files with (its var/ folder's)."""
        from clinic.storage.encrypted_sqlite import database_key

        given = self.env().get("CLINIC_ENCRYPTION_KEY", "").strip()
        return database_key(given or load_encryption_key_of(self.var_dir))

    def clinic_engine(self) -> Any:
        """The stack's clinic DB, opened in this process with the stack's key."""
        from clinic.storage import db

        return db.get_engine(self.clinic_db_url, self.database_key)

    @property
    def action_token(self) -> str:
        """The action server's secret, as every process of the stack reads it (made on first use)."""
        given = self.env().get("ACTION_SERVER_TOKEN", "").strip()
        if given:
            return given
        saved = os.environ.pop("ACTION_SERVER_TOKEN", None)  # another stack's, set by read_endpoints
        try:
            return load_action_token(self.var_dir)
        finally:
            if saved is not None:
                os.environ["ACTION_SERVER_TOKEN"] = saved

    def read_endpoints(self) -> Any:
        """endpoints.yml as ``write_endpoints`` makes it, read by Rasa in this process, with this
        stack's action server secret in the environment (as clinic.rasa_runtime.rasa_launch puts it)."""
        from rasa.core.utils import AvailableEndpoints

        os.environ["ACTION_SERVER_TOKEN"] = self.action_token
        path = self.write_endpoints()
        endpoints = yaml.safe_load(path.read_text())
        # the tracker store's file keyed as the stack's processes key it (its action server reads it)
        endpoints["tracker_store"]["password"] = self.database_key
        in_process = self.workdir / "endpoints.in-process.yml"
        in_process.write_text(yaml.safe_dump(endpoints, sort_keys=False))
        return AvailableEndpoints.read_endpoints(str(in_process))

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.pop("ACTION_SERVER_TOKEN", None)  # each stack its own (var/action_token), unless extra_env says
        env.update(
            PYTHONPATH=str(ROOT),
            RASA_TELEMETRY_ENABLED="false",
            TF_CPP_MIN_LOG_LEVEL="2",
            SQLALCHEMY_SILENCE_UBER_WARNING="1",
            CLINIC_VAR_DIR=str(self.var_dir),
            CLINIC_DB_URL=self.clinic_db_url,
            RASA_URL=self.rasa_url,
            WEB_HOST="127.0.0.1",
            WEB_PORT=str(self.web_port),
            SANIC_HOST="127.0.0.1",
            STAFFING_FILE=str(self.staffing_file),
            # what the console writes when staff accept corrections: never the project's data/
            TRAINING_DATA_DIR=str(self.training_data_dir),
        )
        env.update(self.extra_env)
        return env

    @property
    def training_data_dir(self) -> Path:
        return self.workdir / "training-data"

    @property
    def staffing_file(self) -> Path:
        return self.workdir / "staffing.yml"

    def set_staffed(self, staffed: bool) -> None:
        """Staffed around the clock (the default of the test stack), or never: the action
        server reads the file again when it changes."""
        write_staffing(self.staffing_file, staffed)

    def write_endpoints(self) -> Path:
        """endpoints.yml as `make run` deploys it (the clinic's SQLite tracker store), with this
        stack's action server port and var/ folder."""
        endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
        endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{self.actions_port}/webhook"
        store = endpoints["tracker_store"]
        if store.get("dialect") != "sqlite":
            raise ValueError("the test stack expects the SQLite tracker store of endpoints.yml")
        store["db"] = str(self.var_dir / "tracker.db")
        if "lock_store" in endpoints:  # shared by the Rasa servers of one machine
            endpoints["lock_store"]["db"] = str(self.var_dir / "locks.db")
        path = self.workdir / "endpoints.yml"
        path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
        return path

    def commands(self) -> Dict[str, List[str]]:
        return {
            "rasa": rasa_command(self.rasa_port, self.write_endpoints()),
            "actions": actions_command(self.actions_port),
            "web": [sys.executable, "-m", "clinic.web"],
            "console": [sys.executable, "-m", "clinic.console"],
        }

    def process_env(self, name: str) -> Dict[str, str]:
        """The environment of one process: the stack's, plus the console's own settings."""
        env = self.env()
        if name == "console":
            env.update(
                CONSOLE_HOST="127.0.0.1", CONSOLE_PORT=str(self.console_port), TRACKER_DB_URL=self.tracker_db_url
            )
        return env

    def start(self, name: str) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if not self.staffing_file.exists():
            self.set_staffed(True)
        log = open(self.workdir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            self.commands()[name], cwd=ROOT, env=self.process_env(name), stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def start_all(self, timeout_s: float = 240) -> None:
        for name in ("actions", "rasa", "web"):
            self.start(name)
        self.wait_ready(timeout_s)

    def checks(self) -> Dict[str, Callable[[], bool]]:
        """How to tell that each process answers (Rasa: its model is loaded)."""
        return {
            "actions": lambda: healthy(f"http://127.0.0.1:{self.actions_port}"),
            "rasa": lambda: rasa_ready(self.rasa_url, self.rasa_token),
            "web": lambda: healthy(self.web_url),
            "console": lambda: healthy(self.console_url),
        }

    def wait_ready(self, timeout_s: float = 240, names: Optional[List[str]] = None) -> None:
        """Waits until every started process (or those of ``names``) answers."""
        deadline = time.time() + timeout_s
        checks = self.checks()
        for name in names or list(self.procs):
            check = checks.get(name)
            if check is None:
                continue
            while True:
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log_tail(name)}")
                try:
                    if check():
                        break
                except requests.RequestException:
                    pass
                if time.time() > deadline:
                    raise TimeoutError(f"{name} not ready:\n{self.log_tail(name)}")
                time.sleep(0.5)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return f"{path}:\n" + "\n".join(text)

    def start_console(self, timeout_s: float = 60) -> str:
        """Starts the staff console (once) and waits for it; returns its URL."""
        proc = self.procs.get("console")
        if proc is None or proc.poll() is not None:
            self.start("console")
        self.wait_ready(timeout_s)
        return self.console_url

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


# --- the commands, as the Procfile has them --------------------------------------

@contextlib.contextmanager
def agent_with_actions(folder: Path, loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    """The trained model loaded on ``loop`` as the Rasa server loads it, its custom actions run by
    the action server of a temporary stack in ``folder`` (stopped when the block ends)."""
    from rasa.core.agent import load_agent

    stack = Stack(folder)
    stack.start("actions")
    try:
        stack.wait_ready(120, names=["actions"])
        endpoints = stack.read_endpoints()
        yield loop.run_until_complete(load_agent(model_path=str(ROOT / "models" / "clinic.tar.gz"), endpoints=endpoints))
    finally:
        stack.stop_all()


def rasa_command(port: int, endpoints: Path) -> List[str]:
    """The Rasa server with its HTTP API on loopback, behind the token (``clinic.rasa_runtime.rasa_launch``)."""
    return [sys.executable, "-m", "clinic.rasa_runtime.rasa_launch", "--model", str(ROOT / "models" / "clinic.tar.gz"),
            "--enable-api", "--interface", "127.0.0.1", "--port", str(port), "--endpoints", str(endpoints),
            "--credentials", str(ROOT / "credentials.yml"),
            "--logging-config-file", str(ROOT / "settings" / "logging.yml")]


def actions_command(port: int) -> List[str]:
    """The action server (on loopback through SANIC_HOST in the environment; ``clinic.rasa_runtime.action_launch``)."""
    return [sys.executable, "-m", "clinic.rasa_runtime.action_launch", "--actions", "actions", "--port", str(port),
            "--logging-config-file", str(ROOT / "settings" / "logging.yml")]


def healthy(url: str) -> bool:
    """The server at ``url`` answers its /health (the action server, the web app, the console)."""
    return requests.get(f"{url}/health", timeout=2).ok


def rasa_ready(url: str, token: str) -> bool:
    """The Rasa server at ``url`` answers its HTTP API (so its model is loaded); raises at once
    when it refuses the token (another var/ or RASA_TOKEN than the server's)."""
    resp = requests.post(f"{url}/model/parse", params={"token": token}, json={"text": "hi"}, timeout=5)
    if resp.status_code == 401:
        raise RuntimeError(f"the Rasa server at {url} refuses the token (RASA_TOKEN or var/rasa_token differ)")
    return resp.ok


# --- a visitor's side ---------------------------------------------------------

def say(session: requests.Session, stack: Stack, text: str) -> requests.Response:
    return session.post(f"{stack.web_url}/api/chat", json={"message": text}, timeout=60)


def press(session: requests.Session, stack: Stack, button: dict) -> requests.Response:
    return session.post(
        f"{stack.web_url}/api/chat", json={"button": {"payload": button["payload"], "sig": button["sig"], "title": button["title"]}},
        timeout=60
    )


def conversation_id(session: requests.Session, stack: Stack) -> str:
    from clinic.settings import load_secret
    from clinic.web import signing

    return signing.read_conversation_id(load_secret(stack.var_dir), session.cookies.get("cid"))



def conversation_id_of_page(page: Any, stack: Stack) -> str:
    """The conversation of a browser page's widget (its cid cookie)."""
    session = requests.Session()
    for c in page.context.cookies():
        if c["name"] == "cid":
            session.cookies.set("cid", c["value"])
    return conversation_id(session, stack)

def button(response: requests.Response, title: str) -> dict:
    """The button with this title among the bot's last replies (an option's number, "2 · ", aside)."""
    for message in response.json()["messages"]:
        for b in message["buttons"]:
            if title in (b["title"], b["title"].split(" · ", 1)[-1]):
                return b
    raise AssertionError(f"no button {title!r} in {response.json()}")
