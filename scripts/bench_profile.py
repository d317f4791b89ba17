"""Where a turn spends its time inside the Rasa server (prints a breakdown; `make bench` does not run it).

Loads a model in this process as `rasa run` does (endpoints.yml's tracker store on a SQLite file
and the action server of a temporary stack, Rasa's in-memory lock store), plays the bench's visitor scripts
one message at a time (concurrency 1, what the REST channel calls: ``Agent.handle_message``),
and times with wrappers (wall time, and this thread's CPU time: waiting on the disk or on the
action server is not CPU):

- NLU (``MessageProcessor.parse_message``), with each graph component apart;
- policy predictions (``_predict_next_with_tracker``: every policy runs on every prediction),
  with each policy apart;
- the tracker store: reading (query + JSON + replaying the events into a tracker) and saving;
- custom actions (``RemoteAction.run``: the HTTP call to the action server and its work);
- the rest of ``handle_message`` (Rasa's own bookkeeping: slots, events, responses).

With --cprofile it also writes the top functions of a cProfile run to
results/bench/profile-<model>.txt (and the whole run to profile-<model>.prof, for pstats).

    PYTHONPATH=. .venv/bin/python scripts/bench_profile.py [--model models/clinic.tar.gz] [--visitors 40] [--cprofile]
        [--without tracker_caches ...]   (CLINIC_RASA_PATCHES=0 in the environment: none of the patches)
"""

import argparse
import asyncio
import cProfile
import gc
import io
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

import requests  # noqa: E402

from clinic.rasa_runtime.patches.profile_timers import COUNTS, CPU, TIMES, install_timers  # noqa: E402
from scripts.bench_visitors import Visitors, rasa_message  # noqa: E402
from scripts.bench_stack import BenchStack  # noqa: E402

GC: Dict[str, float] = defaultdict(float)  # garbage collections during the run: count and seconds by generation
async def play(agent: Any, visitors: Visitors, count: int) -> int:
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    turns = 0
    for _ in range(count):
        script = visitors.next()
        sender = uuid.uuid4().hex
        last: List[Dict[str, Any]] = []
        for kind, value in script.steps:
            text, metadata = rasa_message(kind, value, last)
            out = CollectingOutputChannel()
            await agent.handle_message(UserMessage(text, out, sender, input_channel="rest", metadata=metadata))
            last = out.messages
            turns += 1
    return turns


def gc_timer() -> Callable[[str, Dict[str, Any]], None]:
    """A ``gc.callbacks`` entry adding each collection's wall time to GC (by generation)."""
    started: List[float] = []

    def callback(phase: str, info: Dict[str, Any]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            GC[f"gen{info['generation']} s"] += time.perf_counter() - started[0]
            GC[f"gen{info['generation']} n"] += 1
    return callback


def report(turns: int, wall_s: float) -> str:
    lines = [f"{turns} turns in {wall_s:.1f} s at concurrency 1: {wall_s * 1000 / turns:.1f} ms per turn (wall)", ""]
    total = TIMES.get("turn (handle_message)", 0.0)
    top = ["NLU (parse_message)", "policies (_predict_next_with_tracker)", "tracker store: read",
           "  of which replaying events (from_dict)", "tracker store: save", "custom actions (action server)"]
    accounted = accounted_cpu = 0.0
    lines.append(f"{'where (per turn)':<48} {'wall ms':>8} {'share':>6} {'CPU ms':>7} {'calls':>6}")
    for key in top:
        ms, cpu_ms = TIMES.get(key, 0.0) * 1000 / turns, CPU.get(key, 0.0) * 1000 / turns
        if not key.startswith("  "):
            accounted += TIMES.get(key, 0.0)
            accounted_cpu += CPU.get(key, 0.0)
        lines.append(f"{key:<48} {ms:>8.2f} {TIMES.get(key, 0.0) / total:>6.0%} {cpu_ms:>7.2f} "
                     f"{COUNTS.get(key, 0) / turns:>6.2f}")
    rest, rest_cpu = total - accounted, CPU.get("turn (handle_message)", 0.0) - accounted_cpu
    lines.append(f"{'the rest of handle_message (Rasa bookkeeping)':<48} {rest * 1000 / turns:>8.2f} "
                 f"{rest / total:>6.0%} {rest_cpu * 1000 / turns:>7.2f}")
    lines.append(f"{'turn (handle_message)':<48} {total * 1000 / turns:>8.2f} {1:>6.0%} "
                 f"{CPU.get('turn (handle_message)', 0.0) * 1000 / turns:>7.2f}")
    collections = ", ".join(f"gen{g}: {int(GC.get(f'gen{g} n', 0))} taking {GC.get(f'gen{g} s', 0.0) * 1000:.0f} ms"
                            for g in range(3))
    lines.append(f"garbage collections: {collections} "
                 f"({sum(v for k, v in GC.items() if k.endswith(' s')) * 1000 / turns:.2f} ms per turn)")
    lines += ["", "graph components (NLU and policies) and custom actions, by total time (CPU: this process):"]
    nodes = sorted((k for k in TIMES if k.startswith(("  node ", "  action "))), key=lambda k: -TIMES[k])
    for key in nodes:
        lines.append(f"{key:<70} {TIMES[key] * 1000 / turns:>7.2f} ms {CPU[key] * 1000 / turns:>7.2f} CPU ms "
                     f"{COUNTS[key] / turns:>5.2f} calls")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    import rasa.core.agent

    from clinic.rasa_runtime import patches

    patches.install()  # as clinic.rasa_runtime.rasa_launch does (none when CLINIC_RASA_PATCHES=0)
    for name in args.without:  # one patch off, to measure what it gains
        next(patch for patch in patches.PATCHES if patch.name == name).uninstall()
    print(f"patches in place: {', '.join(patches.installed()) or 'none'}")

    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    stack = BenchStack(workdir)
    if args.actions_port:  # an action server started apart (e.g. under cProfile)
        stack.actions_port = args.actions_port
    else:
        stack.start("actions")
    try:
        deadline = time.time() + 120
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{stack.actions_port}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                raise TimeoutError("action server not ready")
            time.sleep(0.3)
        stack.var_dir.mkdir(parents=True, exist_ok=True)
        endpoints = stack.read_endpoints()
        started = time.perf_counter()
        agent = await rasa.core.agent.load_agent(model_path=str(args.model), endpoints=endpoints)
        print(f"model loaded in {time.perf_counter() - started:.1f} s")
        await play(agent, Visitors(seed=args.seed + 1), 3)  # warm-up, not counted
        store = type(getattr(agent.tracker_store, "_tracker_store", agent.tracker_store))  # inside Rasa's FailSafe
        print(f"tracker store: {store.__module__}.{store.__name__}")
        install_timers(store)
        TIMES.clear()
        CPU.clear()
        COUNTS.clear()
        GC.clear()
        gc.callbacks.append(gc_timer())
        profiler = cProfile.Profile() if args.cprofile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        turns = await play(agent, Visitors(seed=args.seed), args.visitors)
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - started
        text = report(turns, wall)
        print(text)
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(40)
            path = ROOT / "results" / "bench" / f"profile-{Path(args.model).name.split('.')[0]}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n\n" + out.getvalue())
            stats.dump_stats(path.with_suffix(".prof"))  # for pstats: callers, callees
            print(f"\ncProfile written to {path.relative_to(ROOT)}")
    finally:
        from clinic.rasa_runtime.patches.kept_action_session import close_sessions

        await close_sessions()  # the action endpoint's kept HTTP sessions, as Rasa's shutdown does
        stack.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "clinic.tar.gz")
    parser.add_argument("--visitors", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--without", action="append", default=[], metavar="PATCH",
                        help="a patch of clinic/rasa_runtime/patches/ left out (by its module's name; repeatable)")
    parser.add_argument("--actions-port", type=int, help="use the action server already listening on this port")
    args = parser.parse_args()
    from rasa.utils.log_utils import configure_structlog

    logging.basicConfig(level=logging.WARNING)
    configure_structlog(logging.INFO)  # as `rasa run` does: no debug events
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
