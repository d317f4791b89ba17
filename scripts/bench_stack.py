"""The test stack (tests/stack.py, which runs endpoints.yml as `make run` deploys it) as the
bench runs it: a chosen model, more Rasa servers, the Rasa server under cProfile, or Rasa on its
own runtime (``rasa_own_runtime``: Rasa's `rasa run` command, Rasa's own SQL tracker store on a
plain SQLite file, no code of the clinic's in the Rasa process, no patch)."""

import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import yaml

from tests.stack import ROOT, Stack, free_port, rasa_ready


class BenchStack(Stack):
    def __init__(self, workdir: Path, model: Optional[Path] = None, extra_env: Optional[Dict[str, str]] = None,
                 rasa_profile: Optional[Path] = None, rasa_servers: int = 1, rasa_own_runtime: bool = False) -> None:
        super().__init__(workdir, extra_env=dict(extra_env or {}))
        self.model = model
        self.rasa_own_runtime = rasa_own_runtime
        self.rasa_profile = rasa_profile  # run the Rasa server under cProfile, its stats written here at exit
        # more Rasa servers on the same tracker store and lock store ("rasa2", ...), as `make run`
        # has two: the web app and the console send each conversation to one of them (RASA_URL)
        self.more_rasa_ports = {f"rasa{n}": free_port() for n in range(2, rasa_servers + 1)}
        if self.more_rasa_ports:
            self.extra_env["RASA_URL"] = ",".join(self.rasa_urls.values())

    def start_all(self, timeout_s: float = 240) -> None:
        """As `make run`: the action server, every Rasa server, the web app."""
        for name in ("actions", *self.rasa_urls, "web"):
            self.start(name)
        self.wait_ready(timeout_s)

    def checks(self) -> Dict[str, Callable[[], bool]]:
        checks = super().checks()
        for name, url in self.rasa_urls.items():
            checks[name] = lambda url=url: rasa_ready(url, self.rasa_token)
        return checks

    @property
    def rasa_urls(self) -> Dict[str, str]:
        """Every Rasa server of the stack, by process name."""
        return {"rasa": self.rasa_url, **{name: f"http://127.0.0.1:{port}" for name, port in self.more_rasa_ports.items()}}

    def write_rasa_own_endpoints(self) -> Path:
        """endpoints.yml with Rasa's own SQL tracker store (a plain SQLite file) and lock store
        (in memory: one Rasa server), the same action server."""
        endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
        path = self.workdir / "endpoints.rasa-own.yml"
        path.write_text(yaml.safe_dump({
            "action_endpoint": {**endpoints["action_endpoint"], "url": f"http://127.0.0.1:{self.actions_port}/webhook"},
            "tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(self.var_dir / "rasa-own-tracker.db")},
        }, sort_keys=False))
        return path

    def write_rasa_own_credentials(self) -> Path:
        """credentials.yml with Rasa's own REST channel (the clinic's keeps a button's parse)."""
        path = self.workdir / "credentials.rasa-own.yml"
        path.write_text(yaml.safe_dump({"rest": None}))
        return path

    def process_env(self, name: str) -> Dict[str, str]:
        env = super().process_env(name)
        if self.rasa_own_runtime and name.startswith("rasa"):
            env["ACTION_SERVER_TOKEN"] = self.action_token  # what clinic.rasa_runtime.rasa_launch would set
        return env

    def commands(self) -> Dict[str, List[str]]:
        commands = super().commands()
        if self.rasa_own_runtime:
            if self.more_rasa_ports or self.rasa_profile is not None:
                raise ValueError("Rasa's own runtime: one Rasa server, not profiled")
            commands["rasa"] = [str(Path(sys.executable).parent / "rasa"), "run", "--model", str(self.model),
                                "--enable-api", "--interface", "127.0.0.1", "--port", str(self.rasa_port),
                                "--endpoints", str(self.write_rasa_own_endpoints()),
                                "--credentials", str(self.write_rasa_own_credentials()), "--auth-token", self.rasa_token]
            return commands
        if self.model is not None:
            rasa = commands["rasa"]
            rasa[rasa.index("--model") + 1] = str(self.model)
        if self.rasa_profile is not None:
            rasa = commands["rasa"]
            if rasa[1] != "-m":
                raise ValueError(f"cannot profile the Rasa command {rasa[:3]}")
            commands["rasa"] = [rasa[0], "-m", "cProfile", "-o", str(self.rasa_profile), *rasa[1:]]
        for name, port in self.more_rasa_ports.items():
            rasa = list(commands["rasa"])
            rasa[rasa.index("--port") + 1] = str(port)
            commands[name] = rasa
        return commands

    @property
    def api_params(self) -> Dict[str, str]:
        """Query parameters for Rasa's HTTP API (its token, once the stack has one)."""
        return dict(getattr(self, "rasa_params", {}) or {})
