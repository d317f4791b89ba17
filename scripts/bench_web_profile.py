"""The web app's CPU per turn under load, and where it goes (prints figures; no test runs it).

Starts the test stack (Rasa, the action server, the web app; rate limits off, SQLite in a
temporary var/), warms up, then drives the bench's simulated visitors (scripts/bench_visitors.py)
through the visitor API at one concurrency for a fixed time, and prints turns per second, the
latency per turn and the CPU per turn of each process (the web app's first).

With --cprofile the web app runs under cProfile, in its event loop's thread and in the worker
threads that do its database reads (``asyncio.to_thread``), timed with each thread's CPU clock
(waiting is not counted; start-up imports are); when the level is over it is stopped
(SIGINT, as Ctrl-C) and the top functions are printed and written to
results/bench/web-profile-<time>.txt (the statistics themselves in .prof beside it). The
profiler slows the web app: take CPU figures from a run without it.

    PYTHONPATH=. .venv/bin/python scripts/bench_web_profile.py [--concurrency 10] [--duration 30]
        [--warmup 10] [--cprofile] [--top 40]
"""

import argparse
import asyncio
import cProfile
import datetime as dt
import io
import pstats
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_procs import CpuMeter  # noqa: E402
from scripts.bench_visitors import Visitors, run_level, summarize  # noqa: E402
from tests.stack import Stack  # noqa: E402

RESULTS = ROOT / "results" / "bench"
STACK_ENV = {"RATE_LIMIT_MESSAGES": "off", "RATE_LIMIT_NEW_VISITORS": "off"}
PROCESSES = ("web", "rasa", "actions")


def serve_profiled(out: Path) -> None:
    """Run the web app (``python -m clinic.web``) under cProfile, worker threads included, and
    write the merged statistics to ``out`` when it stops."""
    profiles: List[cProfile.Profile] = []

    def start_in_thread(*_args: object) -> None:  # the first profile event of a new thread
        sys.setprofile(None)
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start_in_thread)
    main = cProfile.Profile(time.thread_time)
    main.enable()
    try:
        from clinic.web.__main__ import main as serve

        serve()
    finally:
        main.disable()
        stats = pstats.Stats(main)
        for profile in profiles:
            try:
                stats.add(profile)
            except TypeError:  # a thread that profiled nothing
                pass
        stats.dump_stats(str(out))


class ProfiledStack(Stack):
    """The test stack, its web app under cProfile (``serve_profiled``)."""

    def __init__(self, workdir: Path, extra_env: Dict[str, str], profile_out: Path) -> None:
        super().__init__(workdir, extra_env=extra_env)
        self.profile_out = profile_out

    def commands(self) -> Dict[str, List[str]]:
        commands = super().commands()
        commands["web"] = [sys.executable, str(Path(__file__).resolve()), "--serve-profiled", str(self.profile_out)]
        return commands


def top_functions(path: Path, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        out.write(f"\n--- top {top} by {key} ---\n")
        stats.sort_stats(key).print_stats(top)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--duration", type=float, default=30, help="seconds measured (default 30)")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of warm-up, not counted (default 10)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cprofile", action="store_true", help="run the web app under cProfile")
    parser.add_argument("--top", type=int, default=40, help="functions listed (with --cprofile)")
    parser.add_argument("--serve-profiled", type=Path, help=argparse.SUPPRESS)  # the web process itself
    args = parser.parse_args()
    if args.serve_profiled:
        serve_profiled(args.serve_profiled)
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    profile_out = workdir / "web.prof"
    stack = ProfiledStack(workdir, STACK_ENV, profile_out) if args.cprofile else Stack(workdir, extra_env=STACK_ENV)
    ok = False
    try:
        stack.start_all()
        print(f"stack up in {workdir}", flush=True)
        if args.warmup > 0:
            asyncio.run(run_level(stack.web_url, Visitors(seed=args.seed + 1), 4, args.warmup))
        visitors = Visitors(seed=args.seed)  # reading the visitors' phrasings is not a turn's work
        meter = CpuMeter({name: stack.procs[name].pid for name in PROCESSES})
        level = asyncio.run(run_level(stack.web_url, visitors, args.concurrency, args.duration))
        cpu = meter.stop()
        wall = cpu.pop("_wall")
        summary = summarize(level)
        turns = max(1, summary["turns"] - summary["errors"])
        print(f"c={args.concurrency}: {summary['turns']} turns, {summary['turns_per_s']:.1f} turns/s, "
              f"p50 {summary['p50_ms']:.0f} ms, p95 {summary['p95_ms']:.0f} ms, errors {summary['errors']}, "
              f"deviations {summary['deviations']}{' (web app under cProfile)' if args.cprofile else ''}")
        print("CPU ms per turn: " + ", ".join(f"{name} {cpu[name] * 1000 / turns:.2f}" for name in cpu))
        print("cores busy: " + ", ".join(f"{name} {cpu[name] / wall:.2f}" for name in cpu)
              + f"; machine {meter.machine()}")
        if args.cprofile:
            stack.procs["web"].send_signal(signal.SIGINT)
            stack.procs["web"].wait(timeout=60)
            deadline = time.monotonic() + 10
            while not profile_out.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            report = top_functions(profile_out, args.top)
            RESULTS.mkdir(parents=True, exist_ok=True)
            path = RESULTS / f"web-profile-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.txt"
            path.write_text(f"{summary['turns']} turns at c={args.concurrency}\n{report}")
            shutil.copy(profile_out, path.with_suffix(".prof"))  # for pstats / snakeviz
            print(report)
            print(f"written to {path.relative_to(ROOT)} (and {path.with_suffix('.prof').name})")
        ok = True
    except requests.RequestException as exc:
        print(f"failed: {exc}", file=sys.stderr)
    finally:
        stack.stop_all()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir} (the processes' logs)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
