"""What a parse costs, component by component: the NLU of the trained model, in this process.

    python scripts/bench_parse.py [--model models/clinic.tar.gz] [--messages 600]

Loads the model as the Rasa server does and parses the bench's visitor texts (scripts/
bench_visitors.py: greetings, FAQ questions in the held-out sets' wording, pre-screen answers)
one at a time, with each NLU component timed as Rasa runs it. Prints the p50 and p95 wall time of
the whole parse and of each component, and what the safety layer adds to a parse: its own
component (patterns and classifier) and, separately, the sentence embedder both it and the intent
classifier read. Run by ``make bench`` after the load test (docs/PERFORMANCE.md).
"""

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_INTRA_OP_PARALLELISM_THREADS", "1")  # as clinic.rasa_runtime.rasa_launch runs the servers
os.environ.setdefault("TF_INTER_OP_PARALLELISM_THREADS", "1")


def texts(count: int) -> List[str]:
    from scripts import bench_visitors as bv

    visitors = bv.Visitors(seed=11)
    found: List[str] = []
    while len(found) < count:
        found += [value for kind, value in visitors.next().steps if kind == "say"]
    return found[:count]


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(model: str, count: int) -> Dict[str, Dict[str, float]]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    from clinic.rasa_runtime import patches
    from clinic.rasa_runtime.patches.profile_timers import time_components

    patches.install()  # as clinic.rasa_runtime.rasa_launch runs the servers (none when CLINIC_RASA_PATCHES=0)
    agent = Agent.load(model)
    timings: Dict[str, List[float]] = defaultdict(list)
    time_components(agent, timings)
    loop = asyncio.new_event_loop()
    sample = texts(count)
    for text in sample[:20]:  # warm-up: the compiled lengths, caches
        loop.run_until_complete(agent.parse_message(text))
    timings.clear()
    for text in sample:
        start = time.perf_counter()
        loop.run_until_complete(agent.parse_message(text))
        timings["whole parse"].append((time.perf_counter() - start) * 1000)
    return {name: {"p50_ms": round(statistics.median(v), 2), "p95_ms": round(percentile(v, 0.95), 2), "n": len(v)}
            for name, v in timings.items()}


def report(result: Dict[str, Dict[str, float]]) -> str:
    lines = [f"  {'':<32} {'p50 ms':>8} {'p95 ms':>8}"]
    for name, r in sorted(result.items(), key=lambda item: -item[1]["p50_ms"]):
        lines.append(f"  {name:<32} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f}")
    safety = result.get("SafetyLayerComponent", {}).get("p50_ms", 0.0)
    embedder = result.get("SentenceEmbedder", {}).get("p50_ms", 0.0)
    lines.append(f"  the safety layer adds {safety:.2f} ms at p50 (its own component); with the sentence embedder it "
                 f"shares with the intent classifier, {safety + embedder:.2f} ms")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "clinic.tar.gz"))
    parser.add_argument("--messages", type=int, default=600)
    args = parser.parse_args()
    print(report(measure(args.model, args.messages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
