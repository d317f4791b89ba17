"""The bench's visitors keep chatting while one Rasa server is killed (a failover benchmark).

Starts the scale stack (tests/scale_stack.py: PostgreSQL, Redis, two Rasa servers each with
its action server, the web app spreading visitors across them), then drives the bench's
simulated visitors (scripts/bench_visitors.py: greetings, FAQs, pre-screens to a referral)
through the visitor API in a closed loop (those still chatting when the time is up play their
scripts to the end, not counted in the figures). After ``--kill-at`` seconds one Rasa server is
killed with SIGKILL (a crash: nothing finished, nothing cleaned up); with ``--restart-at`` it
is started again. Prints turns per second and p50/p95 latency before the kill, while the
server is down and after it answers again, and the errors visitors got. Then it checks what
was stored:

- every visitor message is in the trackers (PostgreSQL's ``events``) exactly once, in the
  order sent (by the message id the widget sends, which the web app keeps in the user
  event's metadata), and each is followed by the bot's answer;
- every pre-screen that showed its reference has its referral row in the clinic DB, with
  that reference (one row per conversation).

Writes everything to results/bench/failover-<time>.json.

    PYTHONPATH=. .venv/bin/python scripts/bench_failover.py [--concurrency 10] [--duration 90]
        [--kill-at 20] [--restart-at 40 | --no-restart] [--warmup 10] [--keep]

tests/test_multi_instance.py runs the same driver (``run_failover``, ``check_stored``) shorter
(6 visitors at a time, 25 s, the kill 8 s in) on its scale stack, and asserts on what visitors got
and what was stored, never on the figures.
"""

import argparse
import asyncio
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench import RESULTS, STACK_ENV, log, machine  # noqa: E402
from scripts.bench_visitors import (  # noqa: E402
    REFERRAL_DONE, LevelResult, Turn, VisitorSession, Visitors, percentile, run_visitor,
)
from tests.scale_stack import ScaleStack, missing_programs  # noqa: E402

KILLED = "rasa1"
# what check_stored lists, each empty when all is well
PROBLEMS = ("lost", "doubled", "stored_again_by_the_retry", "out_of_order", "not_sent_by_visitors",
            "without_bot_answer", "referrals_missing_or_wrong")
REFERENCE = re.compile(re.escape(REFERRAL_DONE) + r"\W*([A-Z0-9]{3}-[A-Z0-9]{3})")


@dataclass
class Sent:
    """One message a visitor sent: its id, and whether (and with what) it was answered."""

    message_id: str
    typed: str  # the text typed ("" for a button): kept in memory only, to look for it in logs
    status: int  # 0: no HTTP answer (timeout, connection)
    answered: bool  # HTTP 200 with at least one message
    started: float  # monotonic
    finished: float
    reference: Optional[str] = None  # the referral reference the answer showed


@dataclass
class Conversation:
    cookie: Optional[str] = None
    sent: List[Sent] = field(default_factory=list)


class RecordingSession(VisitorSession):
    """A bench visitor that notes each message id it sent and what came back."""

    def __init__(self, http: aiohttp.ClientSession, web_url: str, record: Conversation) -> None:
        super().__init__(http, web_url)
        self.record = record

    async def post(self, body: Dict[str, Any], timeout_s: float) -> Tuple[int, Dict[str, Any], str]:
        typed = body.get("message") or ""
        started = time.monotonic()
        try:
            status, answer, error = await super().post(body, timeout_s)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            self.record.sent.append(Sent(body["id"], typed, 0, False, started, time.monotonic()))
            raise
        texts = [m.get("text") or "" for m in answer.get("messages") or []]
        found = next((m.group(1) for t in texts for m in [REFERENCE.search(t)] if m), None)
        self.record.sent.append(
            Sent(body["id"], typed, status, status == 200 and bool(texts), started, time.monotonic(), found))
        self.record.cookie = self.cookie
        return status, answer, error


@dataclass
class FailoverRun:
    started: float  # monotonic
    duration_s: float
    level: LevelResult
    conversations: List[Conversation]
    killed_at: Optional[float] = None  # monotonic
    restarted_at: Optional[float] = None
    back_at: Optional[float] = None  # the restarted server answered again
    restart_error: Optional[str] = None


async def run_failover(stack: ScaleStack, concurrency: int, duration_s: float, kill_at_s: float,
                       restart_at_s: Optional[float] = None, seed: int = 7, timeout_s: float = 60.0,
                       ready_timeout_s: float = 360.0) -> FailoverRun:
    """A closed loop of bench visitors on ``stack.web_url``: for ``duration_s`` seconds each
    visitor who finishes is replaced by a new one; ``KILLED`` is SIGKILLed ``kill_at_s`` seconds
    in, and started again at ``restart_at_s`` when given. The visitors still chatting at the end
    play their scripts to the end (so that every pre-screen started reaches its referral): their
    later turns are checked like the others but not counted in the figures."""
    visitors = Visitors(seed=seed)
    level = LevelResult(concurrency, duration_s)
    conversations: List[Conversation] = []
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    deadline = started + duration_s
    run = FailoverRun(started, duration_s, level, conversations)

    async def worker(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            record = Conversation()
            conversations.append(record)
            level.visitors_started += 1
            await run_visitor(RecordingSession(http, stack.web_url, record), visitors.next(), level,
                              float("inf"), timeout_s)

    async def chaos() -> None:
        await asyncio.sleep(max(0.0, started + kill_at_s - time.monotonic()))
        await loop.run_in_executor(None, stack.kill, KILLED)
        run.killed_at = time.monotonic()
        log(f"  {run.killed_at - started:5.1f} s: {KILLED} killed (SIGKILL)")
        if restart_at_s is None:
            return
        await asyncio.sleep(max(0.0, started + restart_at_s - time.monotonic()))
        run.restarted_at = time.monotonic()
        log(f"  {run.restarted_at - started:5.1f} s: {KILLED} starting again")
        try:
            stack.start(KILLED)
            await loop.run_in_executor(None, lambda: stack.wait_ready(ready_timeout_s, names=[KILLED]))
        except (RuntimeError, TimeoutError) as exc:
            run.restart_error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            log(f"  {KILLED} did not come back: {run.restart_error}")
            return
        run.back_at = time.monotonic()
        log(f"  {run.back_at - started:5.1f} s: {KILLED} answers again")

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as http:
        chaos_task = asyncio.ensure_future(chaos())
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        if run.killed_at is None:
            chaos_task.cancel()
        await asyncio.gather(chaos_task, return_exceptions=True)
    return run


def _phase(turns: List[Turn], seconds: float) -> Dict[str, Any]:
    ok = [t.latency_s * 1000 for t in turns if t.ok]
    return {
        "seconds": round(seconds, 1),
        "turns": len(turns),
        "turns_per_s": round(len(ok) / seconds, 2) if seconds > 0 else None,
        "p50_ms": round(percentile(ok, 50), 1) if ok else None,
        "p95_ms": round(percentile(ok, 95), 1) if ok else None,
        "max_ms": round(max(ok), 1) if ok else None,
        "errors": sum(1 for t in turns if not t.ok),
    }


def summarize_run(run: FailoverRun) -> Dict[str, Any]:
    """Figures per phase (by when a turn finished): before the kill, while the server is down,
    after it answers again; and for the whole run."""
    end = run.started + run.duration_s
    kill = run.killed_at or end
    back = run.back_at if run.back_at is not None and run.back_at < end else end
    finished = [(t.started + t.latency_s, t) for t in run.level.turns if t.started + t.latency_s <= end]
    phases = {
        "before": _phase([t for f, t in finished if f < kill], kill - run.started),
        "down": _phase([t for f, t in finished if kill <= f < back], back - kill),
        "after": _phase([t for f, t in finished if f >= back], end - back),
        "all": _phase([t for _, t in finished], run.duration_s),
    }
    at = {name: round(moment - run.started, 1) if moment is not None else None
          for name, moment in (("killed", run.killed_at), ("restarted", run.restarted_at), ("answering", run.back_at))}
    level = run.level
    return {
        "phases": phases,
        "at_s": at,
        "restart_error": run.restart_error,
        "errors": sum(1 for c in run.conversations for s in c.sent if s.status != 200),
        "error_samples": level.error_samples,
        "turns_after_the_end": sum(1 for t in level.turns if t.started + t.latency_s > end),
        "visitors_started": level.visitors_started,
        "visitors_finished": level.visitors_finished,
        "referrals": level.referrals,
        "prescreens_without_referral": level.prescreens_without_referral,
        "deviations": level.deviations,
    }


def check_stored(stack: ScaleStack, run: FailoverRun) -> Dict[str, Any]:
    """What PostgreSQL holds for the run's conversations against what the visitors sent and saw.
    Every list in the result is empty when all is well."""
    import sqlalchemy as sa

    from clinic.settings import load_secret
    from clinic.web import signing

    secret = load_secret(stack.var_dir)
    by_id = {}
    for record in run.conversations:
        cid = signing.read_conversation_id(secret, record.cookie)
        if cid is not None:
            by_id[cid] = record
    no_conversation = sum(1 for r in run.conversations if r.cookie is None and any(s.answered for s in r.sent))

    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            events = conn.execute(
                sa.text("SELECT sender_id, type_name, data FROM events WHERE sender_id = ANY(:ids) ORDER BY id"),
                {"ids": list(by_id)},
            ).fetchall()
            referral_rows = conn.execute(
                sa.text("SELECT conversation_id, reference FROM referrals WHERE conversation_id = ANY(:ids)"),
                {"ids": list(by_id)},
            ).fetchall()
    finally:
        engine.dispose()
    return {"conversations": len(by_id), "answered_without_conversation": no_conversation,
            **compare_stored(run, by_id, events, referral_rows)}


def compare_stored(run: FailoverRun, by_id: Dict[str, Conversation], events: List[Tuple[str, str, str]],
                   referral_rows: List[Tuple[str, str]]) -> Dict[str, Any]:
    """``check_stored``'s verdict on the rows it read: ``events`` as (sender_id, type_name, data)
    in the order stored, ``referral_rows`` as (conversation_id, reference)."""
    # per conversation: the message id of each user event, and whether a bot event followed it
    stored: Dict[str, List[List[Any]]] = {cid: [] for cid in by_id}
    for sender, kind, data in events:
        if kind == "user":
            stored[sender].append([(json.loads(data).get("metadata") or {}).get("message_id"), False])
        elif kind == "bot" and stored[sender]:
            stored[sender][-1][1] = True

    lost, doubled, again, out_of_order, unanswered, foreign = [], [], [], [], [], []
    for cid, record in by_id.items():
        ids = [message_id for message_id, _ in stored[cid]]
        sent_ids = [s.message_id for s in record.sent]
        for s in record.sent:
            if s.answered and s.message_id not in ids:
                lost.append(f"{cid}: {s.message_id}")
            copies = ids.count(s.message_id)
            if copies > 1:
                # Stored by the killed server just before it died, unanswered, then again by the
                # web app's retry on the other server: sent before the kill, answered after, two
                # copies one after the other. Anything else stored twice is another fault.
                at_kill = run.killed_at is not None and s.started <= run.killed_at <= s.finished
                first = ids.index(s.message_id)
                adjacent = copies == 2 and ids[first + 1] == s.message_id
                (again if at_kill and adjacent else doubled).append(f"{cid}: {s.message_id} x{copies}")
        once = list(dict.fromkeys(ids))  # the order of first copies
        if [i for i in once if i in sent_ids] != [i for i in sent_ids if i in once]:
            out_of_order.append(cid)
        foreign += [f"{cid}: {i}" for i in ids if i not in sent_ids]
        unanswered += [f"{cid}: {i}" for i, bot in stored[cid] if not bot]

    shown = {cid: ref for cid, r in by_id.items() for ref in [next((s.reference for s in r.sent if s.reference), None)]
             if ref}
    rows: Dict[str, List[str]] = {}
    for cid, reference in referral_rows:
        rows.setdefault(cid, []).append(reference)
    referral_missing = [f"{cid}: {ref}" for cid, ref in shown.items() if rows.get(cid) != [ref]]
    return {
        "messages_answered": sum(1 for r in by_id.values() for s in r.sent if s.answered),
        "user_events": sum(len(v) for v in stored.values()),
        "lost": lost,
        "doubled": doubled,
        "stored_again_by_the_retry": again,
        "out_of_order": out_of_order,
        "not_sent_by_visitors": foreign,
        "without_bot_answer": unanswered,
        "referrals_shown": len(shown),
        "referrals_stored": sum(len(v) for v in rows.values()),
        "referrals_missing_or_wrong": referral_missing,
    }


def retries_logged(stack: ScaleStack) -> int:
    """Lines in which the web app said it retried a message on the other Rasa server."""
    path = stack.workdir / "web.log"
    return path.read_text(errors="replace").count("retrying on") if path.exists() else 0


def report(summary: Dict[str, Any], stored: Dict[str, Any]) -> None:
    log(f"\n{'phase':<8} {'seconds':>7} {'turns':>6} {'turns/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'errors':>6}")
    for name, p in summary["phases"].items():
        cells = [f"{p[k]:>8.1f}" if p[k] is not None else f"{'-':>8}" for k in ("turns_per_s", "p50_ms", "p95_ms", "max_ms")]
        log(f"{name:<8} {p['seconds']:>7.1f} {p['turns']:>6} {' '.join(cells)} {p['errors']:>6}")
    log(f"(down: from the kill until the restarted server answered, or the end; at {summary['at_s']})")
    log(f"errors returned to visitors: {summary['errors']} {summary['error_samples'] or ''}")
    log(f"visitors {summary['visitors_started']} started, {summary['visitors_finished']} finished; referrals shown "
        f"{summary['referrals']}; deviations {summary['deviations']}; retries on the other server logged "
        f"{summary['retries_logged']}")
    log(f"\nstored: {stored['conversations']} conversations, {stored['messages_answered']} messages answered, "
        f"{stored['user_events']} user events")
    for key in PROBLEMS:
        items = stored[key]
        log(f"  {'ok  ' if not items else 'FAIL'} {key}: {len(items)} {items[:5] if items else ''}")
    log(f"  referrals: {stored['referrals_shown']} shown to visitors, {stored['referrals_stored']} rows stored")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=10)
    # a restarted Rasa server takes 20-40 s to load its model on a busy 2-core machine: 90 s leaves
    # time to measure after it is back
    parser.add_argument("--duration", type=float, default=90, help="seconds of load (default 90)")
    parser.add_argument("--kill-at", type=float, default=20, help=f"SIGKILL {KILLED} after this many seconds (20)")
    parser.add_argument("--restart-at", type=float, default=40, help=f"start {KILLED} again then (40)")
    parser.add_argument("--no-restart", action="store_true", help=f"leave {KILLED} down")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of warm-up before, not counted (10)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder (logs, PostgreSQL)")
    args = parser.parse_args()
    missing = missing_programs()
    if missing:
        log(f"missing: {', '.join(missing)} (apt-get install postgresql redis-server)")
        return 2
    if not (ROOT / "models" / "clinic.tar.gz").exists():
        log("no trained model: run `make train` first")
        return 2
    restart_at = None if args.no_restart else args.restart_at

    workdir = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    workdir.chmod(0o711)  # PostgreSQL's account reaches its folder when this runs as root
    stack = ScaleStack(workdir=workdir, durable=True, extra_env=STACK_ENV)
    info: Dict[str, Any] = {"started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                            "machine": machine(),
                            "settings": {"concurrency": args.concurrency, "duration_s": args.duration,
                                         "kill_at_s": args.kill_at, "restart_at_s": restart_at, "killed": KILLED,
                                         "warmup_s": args.warmup, "seed": args.seed, "rate_limits": "off",
                                         "rasa_servers": stack.instances}}
    ok = False
    try:
        log(f"starting the scale stack (PostgreSQL, Redis, {stack.instances} Rasa servers; logs in {workdir})")
        t0 = time.monotonic()
        stack.start_all()
        log(f"ready in {time.monotonic() - t0:.0f} s")
        if args.warmup > 0:
            from scripts.bench_visitors import run_level

            warm = asyncio.run(run_level(stack.web_url, Visitors(seed=args.seed + 1), 4, args.warmup))
            log(f"warm-up: {len(warm.turns)} turns in {args.warmup:.0f} s (not counted)")
        log(f"load: {args.concurrency} visitors at a time for {args.duration:.0f} s")
        run = asyncio.run(run_failover(stack, args.concurrency, args.duration, args.kill_at, restart_at, args.seed))
        summary = summarize_run(run)
        summary["retries_logged"] = retries_logged(stack)
        stored = check_stored(stack, run)
        report(summary, stored)
        ok = summary["errors"] == 0 and not any(stored[k] for k in PROBLEMS)
        info.update(summary=summary, stored=stored, passed=ok)
    finally:
        stack.stop_all()
        if args.keep or not ok:
            log(f"kept {workdir} (the processes' logs are there)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"failover-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(info, indent=2))
    log(f"\n{'PASSED' if ok else 'FAILED'}: no error to visitors, nothing lost or doubled; written to "
        f"{out.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
