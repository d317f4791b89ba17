"""The stack past one machine, on one machine: PostgreSQL and Redis on loopback, several
Rasa servers each with its own action server, the web app spreading visitors across them,
and (for `make scale-up`) the console, the notifier and a dev mailbox on the same database.

Used by ``scripts/scale-up`` and ``tests/test_multi_instance.py``. Rasa reads
``endpoints.scale.yml`` (DATABASE_URL, REDIS_URL, ACTION_ENDPOINT_URL); every
other process reads the same DATABASE_URL and REDIS_URL from its environment.

PostgreSQL refuses to run as root: when this runs as root, ``initdb`` and ``postgres`` run as
the ``postgres`` account (Debian's package makes it; else ``nobody``) through ``setpriv``,
which starts the server in place so that signals reach it.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import uuid
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from tests.stack import ROOT, Stack, actions_command, free_port, healthy, rasa_command, rasa_ready

DB_NAME = "clinic"
DB_USER = "clinic"


def pg_binary(name: str) -> Optional[str]:
    """A PostgreSQL server program (initdb, postgres): on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return candidates[-1] if candidates else None


def missing_programs() -> List[str]:
    """What this machine lacks to run the stack (Debian packages: postgresql, redis-server)."""
    missing = [name for name in ("initdb", "postgres") if pg_binary(name) is None]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    return missing


def service_account() -> Optional[pwd.struct_passwd]:
    """The account PostgreSQL runs as: None (the current user) unless that is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' account to run PostgreSQL as")


def _as_service_account(command: List[str]) -> List[str]:
    account = service_account()
    if account is None:
        return command
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups", "--", *command]


class Postgres:
    """A PostgreSQL server of its own in ``datadir``, on 127.0.0.1:``port``, trust auth on loopback."""

    def __init__(self, datadir: Path, port: int, log: Path, durable: bool = True) -> None:
        self.datadir = datadir
        self.port = port
        self.log = log
        self.durable = durable  # tests turn fsync off
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def init(self) -> None:
        if (self.datadir / "PG_VERSION").exists():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.datadir, 0o700)
        account = service_account()
        if account is not None:
            os.chown(self.datadir, account.pw_uid, account.pw_gid)
        with open(self.log, "ab") as log:
            subprocess.run(
                _as_service_account([pg_binary("initdb"), "-D", str(self.datadir), "-U", DB_USER, "-A", "trust",
                                     "-E", "UTF8", "--locale=C", "--no-sync"]),
                check=True, stdout=log, stderr=subprocess.STDOUT,
            )

    def start(self, timeout_s: float = 60) -> None:
        settings = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.datadir}",
                    "-c", "max_connections=300"]
        if not self.durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            _as_service_account([pg_binary("postgres"), "-D", str(self.datadir), "-p", str(self.port), *settings]),
            stdout=log, stderr=subprocess.STDOUT,
        )
        self._wait(timeout_s)
        self._create_database()

    def _wait(self, timeout_s: float) -> None:
        import psycopg2

        deadline = time.time() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited: see {self.log}")
            try:
                psycopg2.connect(host="127.0.0.1", port=self.port, user=DB_USER, dbname="postgres").close()
                return
            except psycopg2.OperationalError:
                if time.time() > deadline:
                    raise TimeoutError(f"PostgreSQL not ready: see {self.log}")
                time.sleep(0.2)

    def _create_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=DB_USER, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE DATABASE {DB_NAME}")
        finally:
            conn.close()

    def new_database(self) -> str:
        """A new empty database on this server (a random name), and its URL."""
        import psycopg2

        name = "t" + uuid.uuid4().hex[:10]
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="clinic", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute(f"CREATE DATABASE {name}")
        conn.close()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        """A fast shutdown: open connections are ended (what a restart does to the clients)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Redis:
    """A redis-server of its own on 127.0.0.1:``port``, in memory only."""

    def __init__(self, workdir: Path, port: int, log: Path) -> None:
        self.workdir = workdir
        self.port = port
        self.log = log
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20) -> None:
        import redis

        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--daemonize", "no", "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: see {self.log}")
            try:
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                if time.time() > deadline:
                    raise TimeoutError(f"redis-server not ready: see {self.log}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass
class ScaleStack(Stack):
    """``instances`` Rasa servers (``rasa1``..), each with its own action server (``actions1``..),
    the web app (``web``), and on request the console, the notifier and a dev mailbox."""

    instances: int = 2
    durable: bool = True
    pg_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    rasa_ports: List[int] = field(default_factory=list)
    action_ports: List[int] = field(default_factory=list)
    postgres: Optional[Postgres] = None
    redis: Optional[Redis] = None
    pg_dir: Optional[Path] = None  # PostgreSQL's data folder (default: workdir/pg)

    def __post_init__(self) -> None:
        self.rasa_ports = self.rasa_ports or [free_port() for _ in range(self.instances)]
        self.action_ports = self.action_ports or [free_port() for _ in range(self.instances)]
        self.postgres = Postgres(self.pg_dir or self.workdir / "pg", self.pg_port, self.workdir / "postgres.log",
                                 self.durable)
        self.redis = Redis(self.workdir / "redis", self.redis_port, self.workdir / "redis.log")

    @property
    def rasa_urls(self) -> List[str]:
        return [f"http://127.0.0.1:{port}" for port in self.rasa_ports]

    @property
    def rasa_url(self) -> str:
        """What RASA_URL holds: every Rasa server, comma-separated."""
        return ",".join(self.rasa_urls)

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def tracker_db_url(self) -> str:
        return self.postgres.url

    @property
    def clinic_db_url(self) -> str:
        return self.postgres.url

    def rasa_names(self) -> List[str]:
        return [f"rasa{i + 1}" for i in range(self.instances)]

    def env(self) -> Dict[str, str]:
        env = super().env()
        for name in ("CLINIC_DB_URL", "TRACKER_DB_URL"):  # DATABASE_URL alone: the one switch
            env.pop(name, None)
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(self.smtp_port),
            CONSOLE_HOST="127.0.0.1",
            CONSOLE_PORT=str(self.console_port),
            CONSOLE_URL=self.console_url,
        )
        env.update(self.extra_env)
        return env

    def commands(self) -> Dict[str, List[str]]:
        commands: Dict[str, List[str]] = {}
        for i in range(self.instances):
            commands[f"rasa{i + 1}"] = rasa_command(self.rasa_ports[i], ROOT / "endpoints.scale.yml")
            commands[f"actions{i + 1}"] = actions_command(self.action_ports[i])
        commands["web"] = [sys.executable, "-m", "clinic.web"]
        commands["console"] = [sys.executable, "-m", "clinic.console"]
        commands["notifier"] = [sys.executable, "-m", "clinic.mail.notifier"]
        commands["mailbox"] = [sys.executable, "-m", "clinic.mail.dev_mailbox"]
        return commands

    def process_env(self, name: str) -> Dict[str, str]:
        env = self.env()
        if name.startswith("rasa"):
            i = int(name[len("rasa"):]) - 1
            env["ACTION_ENDPOINT_URL"] = f"http://127.0.0.1:{self.action_ports[i]}/webhook"
        return env

    def start_services(self) -> None:
        """PostgreSQL and Redis (made on first start, kept in ``workdir``)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.postgres.init()
        self.postgres.start()
        self.redis.start()

    def start_all(self, timeout_s: float = 360, extras: bool = False) -> None:
        """Everything, the Rasa servers and action servers at once; ``extras``: the console,
        the notifier and the dev mailbox too."""
        self.start_services()
        names = [n for i in range(self.instances) for n in (f"actions{i + 1}", f"rasa{i + 1}")] + ["web"]
        if extras:
            names += ["mailbox", "notifier", "console"]
        for name in names:
            self.start(name)
        self.wait_ready(timeout_s)

    def checks(self) -> Dict[str, Callable[[], bool]]:
        checks = super().checks()
        for name in ("actions", "rasa"):
            del checks[name]
        for i in range(self.instances):
            checks[f"actions{i + 1}"] = lambda port=self.action_ports[i]: healthy(f"http://127.0.0.1:{port}")
        for i, url in enumerate(self.rasa_urls):
            checks[f"rasa{i + 1}"] = lambda url=url: rasa_ready(url, self.rasa_token)
        return checks

    def kill(self, name: str) -> None:
        """SIGKILL: a crash, nothing finished or cleaned up."""
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        super().stop_all()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()
