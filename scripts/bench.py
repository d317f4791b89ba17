"""`make bench`: the whole stack under load from simulated visitors (prints figures, writes JSON).

For each configuration (the clinic's model, then, unless --no-stock, one trained with Rasa's
stock `rasa init` configuration run on Rasa's own runtime: `rasa run` itself, Rasa's own SQL
tracker store, one Rasa server, no code of the clinic's in that process and no patch), in a fresh
temporary folder, one after the other:

1. starts the action server, the web app and the staff console, then the Rasa servers, and
   times the Rasa servers from start to their first answer to /model/parse (ready, with the
   model loaded); the other config's stack, when up, waits idle;
2. warms up (not counted), then runs a closed loop of simulated visitors at each
   concurrency (1, 10, 50) for a fixed time: each visitor a fresh conversation through
   POST /api/chat, as the widget sends it (scripts/bench_visitors.py). Concurrency 10, the
   level of the targets and of the ratio, runs in windows (4 a config by default), the two
   configs taking turns in ABBA order: the machine's drift over minutes falls on both alike;
3. reports per level: turns per second, p50/p95/p99 latency per turn, errors, script
   deviations, CPU per turn of each process, and the peak resident memory of each process
   (with children) and of the whole stack at once (scripts/bench_procs.py).

Then prints the targets (issue 21: at concurrency 10 p95 < 150 ms and >= 60 turns/s, the stack
< 2.5 GB, Rasa ready < 15 s) and, as information only, the ratio of throughputs to the stock
configuration at concurrency 10; writes everything to results/bench/bench-<time>.json (and
results/bench/latest.json). CLINIC_RASA_PATCHES=0 in the environment runs the clinic's Rasa
servers without the clinic's patches (docs/PERFORMANCE.md: the figures with and without).

    PYTHONPATH=. .venv/bin/python scripts/bench.py [--no-stock] [--levels 1,10,50]
        [--duration 60] [--warmup 15] [--windows 4] [--keep] [--rasa-servers 2] [--profile-rasa]
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import bench_models  # noqa: E402
from scripts.bench_procs import CpuMeter, Sampler  # noqa: E402
from scripts.bench_visitors import LevelResult, Visitors, run_level, summarize  # noqa: E402
from scripts.bench_stack import BenchStack  # noqa: E402

RESULTS = ROOT / "results" / "bench"
# issue 21's targets (the sentence embeddings and encryption at rest on); the ratio to the stock
# configuration is printed as information, not a target
TARGETS = {"p95_ms_at_10": 150.0, "turns_per_s_at_10": 60.0, "stack_peak_mb": 2560.0, "rasa_ready_s": 15.0}
# added to the test stack's environment: simulated visitors all come from one address
STACK_ENV = {"RATE_LIMIT_MESSAGES": "off", "RATE_LIMIT_NEW_VISITORS": "off", "RATE_LIMIT_READS": "off",
             "RATE_LIMIT_ADDRESS": "off"}
PROCESSES = ("rasa", "actions", "web", "console")
RATIO_LEVEL = 10  # the concurrency of the targets and of the ratio to the stock config


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def log(text: str) -> None:
    print(text, flush=True)


def wait_for(check, proc: subprocess.Popen, what: str, timeout_s: float, interval_s: float = 0.1) -> float:
    """Seconds until ``check()`` is true (polled every interval)."""
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited before it was ready")
        try:
            if check():
                return time.monotonic() - started
        except requests.RequestException:
            pass
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")
        time.sleep(interval_s)


class ConfigRun:
    """One configuration's stack (in a fresh temporary folder), started, measured window by
    window, and stopped; ``result`` holds its figures."""

    def __init__(self, name: str, model: Path, args: argparse.Namespace) -> None:
        self.name, self.model, self.args = name, model, args
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.profile = RESULTS / f"rasa-server-{name}-{dt.datetime.now():%Y%m%d-%H%M%S}.prof" if args.profile_rasa else None
        if self.profile is not None:
            RESULTS.mkdir(parents=True, exist_ok=True)
        own = name == "stock"  # Rasa's own runtime (the module docstring)
        self.stack = BenchStack(self.workdir, model, STACK_ENV, rasa_profile=None if own else self.profile,
                                rasa_servers=1 if own else args.rasa_servers, rasa_own_runtime=own)
        # (the stock stack has no console: it reads the clinic's tracker store, which Rasa's own is not)
        self.processes = (*self.stack.rasa_urls, *(p for p in PROCESSES[1:] if not own or p != "console"))
        self.result: Dict[str, Any] = {"config": name, "model": shown(model), "levels": []}
        self.sampler: Any = None
        self.visitors = Visitors(seed=args.seed)
        self.failed = True  # until every level ran and was recorded

    def start(self) -> None:
        """The processes of `make run` that visitors' turns touch (the console too: staff use it
        meanwhile, reading the tracker store's SQLite file), one after the other (the web app and
        the console both create the clinic DB's tables); the Rasa servers last, for their time to
        ready."""
        stack = self.stack
        log(f"\n== {self.name}: {shown(self.model)} (stack in {self.workdir})")
        checks = {
            "actions": f"http://127.0.0.1:{stack.actions_port}/health",
            "web": f"{stack.web_url}/health",
            "console": f"{stack.console_url}/health",
        }
        for process, url in checks.items():
            if process not in self.processes:
                continue
            stack.start(process)
            wait_for(lambda: requests.get(url, timeout=2).ok, stack.procs[process], process, 120)
        started = time.monotonic()
        for server in stack.rasa_urls:
            stack.start(server)
        self.sampler = Sampler({n: stack.procs[n].pid for n in self.processes}).start()
        for server, url in stack.rasa_urls.items():
            wait_for(lambda: requests.post(f"{url}/model/parse", json={"text": "hello"}, params=stack.api_params,
                                           timeout=10).ok, stack.procs[server], f"Rasa server {server}", 300)
        ready_s = time.monotonic() - started  # started together: until the last one answers
        self.result["rasa_ready_s"] = round(ready_s, 2)
        self.result["rasa_servers"] = len(stack.rasa_urls)
        log(f"Rasa server{'s' if len(stack.rasa_urls) > 1 else ''} ready {ready_s:.1f} s after start")

    def warm_up(self) -> None:
        if self.args.warmup > 0:
            warm = asyncio.run(run_level(self.stack.web_url, Visitors(seed=self.args.seed + 1), 4, self.args.warmup))
            log(f"{self.name} warm-up: {len(warm.turns)} turns in {self.args.warmup:.0f} s (not counted)")

    def window(self, concurrency: int, duration_s: float) -> Tuple[LevelResult, Dict[str, Any]]:
        """The closed loop for ``duration_s``, and the CPU each process used meanwhile."""
        meter = CpuMeter({n: self.stack.procs[n].pid for n in self.processes})
        level = asyncio.run(run_level(self.stack.web_url, self.visitors, concurrency, duration_s))
        cpu = meter.stop()
        return level, {"cpu": cpu, "waited": meter.waited(), "machine": meter.machine()}

    def add_level(self, windows: List[Tuple[LevelResult, Dict[str, Any]]]) -> None:
        """A level's figures from its windows (one, or several taken turn about with another config)."""
        level = merged([w for w, _ in windows])
        cpu = {k: sum(m["cpu"][k] for _, m in windows) for k in windows[0][1]["cpu"]}
        waited = {k: sum(m["waited"][k] for _, m in windows) for k in windows[0][1]["waited"]}
        wall = cpu.pop("_wall")
        machine = {k: round(sum(m["machine"][k] * m["cpu"]["_wall"] for _, m in windows) / wall, 2)
                   for k in windows[0][1]["machine"]}
        summary = summarize(level)
        summary["windows"] = len(windows)
        ok_turns = max(1, summary["turns"] - summary["errors"])
        summary["cpu_ms_per_turn"] = {k: round(v * 1000 / ok_turns, 1) for k, v in cpu.items()}
        summary["cpu_busy"] = {k: round(v / wall, 2) for k, v in cpu.items()}  # cores in use on average
        # share of the level's time each main thread was ready to run but had no CPU
        summary["runqueue_wait"] = {k: round(v / wall, 2) for k, v in waited.items()}
        # cores busy on the whole machine (the stack, the load generator and anything else) and
        # stolen by the hypervisor: more than the stack's own use means other work ran meanwhile
        summary["machine_cores"] = {**machine, "stack_and_load": round(sum(cpu.values()) / wall, 2)}
        self.result["levels"].append(summary)
        log(f"  {self.name:<7} c={level.concurrency:<3} {summary['turns_per_s']:7.1f} turns/s  p50 {summary['p50_ms']:7.1f}  "
            f"p95 {summary['p95_ms']:7.1f}  p99 {summary['p99_ms']:7.1f} ms  errors {summary['errors']}  "
            f"deviations {summary['deviations']}  referrals {summary['referrals']}"
            + (f"  ({len(windows)} windows)" if len(windows) > 1 else ""))

    def finish(self, completed: bool) -> None:
        """Memory and the tracker store's file (when every level ran), then the stack stopped; its
        folder kept when something failed (the processes' logs) or with --keep."""
        try:
            if completed:
                self.sampler.stop()
                self.result["memory"] = self.sampler.report()
                db = self.stack.var_dir / "tracker.db"
                self.result["tracker_db_mb"] = round(db.stat().st_size / 2**20, 1) if db.exists() else None
                self.result["tracker_db_journal_mode"] = journal_mode(db)
                self.failed = False
        finally:
            if self.sampler is not None:
                self.sampler.stop()
            self.stack.stop_all()
            if self.profile is not None:
                log(f"Rasa server profile: {shown(self.profile) if self.profile.exists() else 'not written'}")
            if self.args.keep or self.failed:
                log(f"kept {self.workdir} (the processes' logs are there)")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)


def merged(levels: List[LevelResult]) -> LevelResult:
    """Windows of one level as one: their turns and counts together, their durations added."""
    out = LevelResult(levels[0].concurrency, sum(lv.duration_s for lv in levels))
    for lv in levels:
        out.turns.extend(lv.turns)
        for name in ("late_turns", "visitors_started", "visitors_finished", "referrals",
                     "prescreens_without_referral", "deviations"):
            setattr(out, name, getattr(out, name) + getattr(lv, name))
        out.deviation_samples.extend(lv.deviation_samples)
        out.error_samples.extend(lv.error_samples)
    out.deviation_samples, out.error_samples = out.deviation_samples[:10], out.error_samples[:10]
    return out


def run_levels(runs: List[ConfigRun], args: argparse.Namespace) -> None:
    """Each level for each config; the ratio's level (concurrency 10) in ``args.windows`` windows a
    config, taken turn about in ABBA order (clinic, stock, stock, clinic, ...): the two configs then
    share the machine's drift over minutes, which otherwise falls on one and not the other."""
    for concurrency in args.levels:
        if len(runs) > 1 and concurrency == RATIO_LEVEL and args.windows > 1:
            windows: Dict[str, list] = {run.name: [] for run in runs}
            for n in range(args.windows):
                for run in (runs if n % 2 == 0 else runs[::-1]):
                    windows[run.name].append(run.window(concurrency, args.duration / args.windows))
            for run in runs:
                run.add_level(windows[run.name])
        else:
            for run in runs:
                run.add_level([run.window(concurrency, args.duration)])


def journal_mode(path: Path) -> Any:
    """The SQLite file's journal mode (read, not changed; the file is encrypted with the key of
    the var/ folder it is in)."""
    from clinic.storage import encrypted_sqlite

    if not path.exists():
        return None
    with encrypted_sqlite.connect(f"file:{path}?mode=ro", encrypted_sqlite.clinic_key(path.parent), uri=True) as conn:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]


def other_work(lv: Dict[str, Any]) -> float:
    m = lv["machine_cores"]
    return max(0.0, m["busy"] - m["stack_and_load"]) + m["steal"]


def cpu_per_turn(lv: Dict[str, Any]) -> tuple:
    """CPU ms per turn of the Rasa servers, and of every process measured (with the load generator)."""
    c = lv["cpu_ms_per_turn"]
    return sum(v for k, v in c.items() if k.startswith("rasa")), sum(c.values())


def level(result: Dict[str, Any], concurrency: int) -> Dict[str, Any]:
    return next((lv for lv in result["levels"] if lv["concurrency"] == concurrency), {})


def print_report(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    log("\n" + "=" * 100)
    log(f"{'config':<8} {'conc':>4} {'turns':>6} {'turns/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'dev':>4}  CPU ms per turn: rasa / actions / web / load gen  Rasa busy, no CPU  other")
    for r in results:
        for lv in r["levels"]:
            c = lv["cpu_ms_per_turn"]
            rasa = sorted(k for k in c if k.startswith("rasa"))  # every Rasa server: CPU added up
            log(f"{r['config']:<8} {lv['concurrency']:>4} {lv['turns']:>6} {lv['turns_per_s']:>8.1f} "
                f"{lv['p50_ms']:>8.1f} {lv['p95_ms']:>8.1f} {lv['p99_ms']:>8.1f} {lv['errors']:>6} "
                f"{lv['deviations']:>4}  {sum(c[k] for k in rasa):>6.1f} / {c['actions']:.1f} / {c['web']:.1f} / "
                f"{c['load generator']:.1f}   {sum(lv['cpu_busy'][k] for k in rasa):>11.0%} "
                f"{max(lv['runqueue_wait'][k] for k in rasa):>4.0%}  {other_work(lv):>5.2f}")
    log("(Rasa busy: its CPU use, in cores; no CPU: the share of the time its main thread was ready to run\n"
        " but waited for a CPU; other: cores used meanwhile by other work on the machine or stolen by the\n"
        " hypervisor, which lower the figures; dev: visitor scripts that went another way)")
    log("")
    for r in results:
        m = r["memory"]
        each = ", ".join(f"{n} {mb:.0f}" for n, mb in m["peak_rss_mb"].items())
        log(f"{r['config']:<8} peak RSS MB: {each}; sum of peaks {m['peak_rss_sum_mb']:.0f}, "
            f"whole stack at once {m['peak_total_sampled_mb']:.0f} (PSS {m['peak_total_pss_mb']:.0f}); "
            f"Rasa ready in {r['rasa_ready_s']:.1f} s"
            + (f" ({r['rasa_servers']} Rasa servers)" if r.get("rasa_servers", 1) > 1 else ""))

    clinic = results[0]
    c10 = level(clinic, 10)
    checks: Dict[str, Any] = {}
    if c10:
        checks["p95_ms_at_10"] = (c10["p95_ms"], c10["p95_ms"] < TARGETS["p95_ms_at_10"], "<")
        checks["turns_per_s_at_10"] = (c10["turns_per_s"], c10["turns_per_s"] >= TARGETS["turns_per_s_at_10"], ">=")
    stock = next((r for r in results if r["config"] == "stock"), None)
    ratio = None
    if stock and c10 and level(stock, 10).get("turns_per_s"):
        ratio = round(c10["turns_per_s"] / level(stock, 10)["turns_per_s"], 2)
        log(f"\nthroughput at concurrency 10: clinic {c10['turns_per_s']:.1f} / stock "
            f"{level(stock, 10)['turns_per_s']:.1f} turns/s = {ratio:.2f}x (information, not a target)")
        # the same from CPU per turn, which other work on the machine changes much less than throughput
        per_turn = {r["config"]: cpu_per_turn(level(r, 10)) for r in (clinic, stock)}
        log("CPU per turn at concurrency 10 (Rasa / whole stack and load generator), clinic vs stock: "
            f"{per_turn['clinic'][0]:.1f} / {per_turn['clinic'][1]:.1f} ms vs {per_turn['stock'][0]:.1f} / "
            f"{per_turn['stock'][1]:.1f} ms: stock needs {per_turn['stock'][0] / per_turn['clinic'][0]:.2f}x the "
            f"Rasa CPU, {per_turn['stock'][1] / per_turn['clinic'][1]:.2f}x in all (one Rasa process, on one core, "
            f"caps at {1000 / per_turn['clinic'][0]:.0f} / {1000 / per_turn['stock'][0]:.0f} turns/s)")
    peak = max(clinic["memory"]["peak_rss_sum_mb"], clinic["memory"]["peak_total_sampled_mb"])
    checks["stack_peak_mb"] = (peak, peak < TARGETS["stack_peak_mb"], "<")
    checks["rasa_ready_s"] = (clinic["rasa_ready_s"], clinic["rasa_ready_s"] < TARGETS["rasa_ready_s"], "<")
    log(f"\ntargets (clinic config, CLINIC_RASA_PATCHES={'0: no patch' if os.environ.get('CLINIC_RASA_PATCHES', '1').strip() == '0' else 'on'}):")
    for key, (value, ok, op) in checks.items():
        log(f"  {'met ' if ok else 'MISSED'}  {key:<22} {value} (target {op} {TARGETS[key]:g})")
    return {"ratio_to_stock_at_10": ratio,
            "targets": {k: {"value": v, "met": ok, "target": f"{op} {TARGETS[k]:g}"} for k, (v, ok, op) in checks.items()}}


def machine() -> Dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    versions = {}
    for package in ("rasa", "rasa-sdk", "sanic", "spacy", "tensorflow", "scikit-learn", "jsonschema", "SQLAlchemy"):
        versions[package] = subprocess.run(
            [sys.executable, "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **STACK_ENV}).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "load_avg_at_start": os.getloadavg(),
            "python": platform.python_version(), "commit": commit + ("+changes" if dirty else ""),
            "versions": versions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-stock", action="store_true", help="skip the stock configuration")
    parser.add_argument("--levels", default="1,10,50", help="concurrency levels (default 1,10,50)")
    parser.add_argument("--duration", type=float, default=60, help="seconds per level (default 60)")
    parser.add_argument("--warmup", type=float, default=15, help="seconds of warm-up, not counted (default 15)")
    parser.add_argument("--seed", type=int, default=7, help="visitor scripts seed")
    parser.add_argument("--windows", type=int, default=4,
                        help="concurrency 10 in this many windows a config, taken turn about with the stock "
                             "config (default 4; 1: one after the other)")
    parser.add_argument("--model", type=Path, default=bench_models.CLINIC_MODEL,
                        help="the clinic model (default models/clinic.tar.gz)")
    parser.add_argument("--keep", action="store_true", help="keep the stacks' temporary folders (logs, DBs)")
    parser.add_argument("--rasa-servers", type=int, default=2,
                        help="Rasa servers (default 2, as `make run` has them): conversations spread by RASA_URL's "
                             "hash, one lock store shared (endpoints.yml: var/locks.db)")
    parser.add_argument("--no-parse", action="store_true", help="skip the cost of a parse per NLU component")
    parser.add_argument("--profile-rasa", action="store_true",
                        help="run the Rasa server under cProfile (slower: for where its time goes, not for figures); "
                             "stats in results/bench/rasa-server-*.prof")
    args = parser.parse_args()
    args.levels = [int(c) for c in args.levels.split(",") if c.strip()]

    started = time.time()
    load = os.getloadavg()[0]
    if load > 0.5:
        log(f"note: load average {load:.1f} before the run: other work on this machine lowers the figures "
            "(the ratio to the stock config, measured in the same run, holds better)")
    info = {"started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
            "settings": {"levels": args.levels, "duration_s": args.duration, "warmup_s": args.warmup,
                         "seed": args.seed, "tracker_store": "SQLite", "rate_limits": "off",
                         "clinic_rasa_patches": os.environ.get("CLINIC_RASA_PATCHES", "1")}}
    configs = [("clinic", args.model.resolve())]
    if not args.no_stock:
        configs.append(("stock", bench_models.ensure_stock_model(log)))
    runs = [ConfigRun(name, model, args) for name, model in configs]
    completed = False
    try:
        for run in runs:  # one after the other: each Rasa's time to ready alone
            run.start()
        for run in runs:
            run.warm_up()
        run_levels(runs, args)
        completed = True
    finally:
        for run in runs:
            run.finish(completed)
    results = [run.result for run in runs]
    report = print_report(results)
    if not args.no_parse:  # in a process of its own, once the stacks are down
        log("\nthe cost of a parse, per NLU component (scripts/bench_parse.py, in-process, one message at a time):")
        parse = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_parse.py"), "--model", str(args.model)],
                               capture_output=True, text=True)
        log(parse.stdout.rstrip() or parse.stderr[-2000:])
        info["parse"] = parse.stdout
    info.update(report, results=results, total_s=round(time.time() - started, 1))

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"bench-{stamp}.json"
    out.write_text(json.dumps(info, indent=2))
    shutil.copyfile(out, RESULTS / "latest.json")
    log(f"\nwritten to {out.relative_to(ROOT)} (and latest.json); {info['total_s'] / 60:.1f} min in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
