"""Simulated visitors for `make bench`: scripted conversations, driven through the visitor API.

A visitor is what the widget does: ``POST /api/chat`` with ``{"message": ..., "id": ...}`` for
typed text or ``{"button": {"payload", "sig", "title"}, "id": ...}`` for a button the bot
offered, with the ``cid`` cookie the first answer set. Each visitor is a fresh conversation.

Two kinds of visitor, drawn from a seeded generator (so every configuration sees the same
visitors in the same order):

- questions: a greeting, 2 to 5 FAQ questions on different topics, thanks and/or goodbye;
- pre-screen: a greeting, 2 or 3 FAQ questions, then the whole pre-screen to a referral
  (21 turns: consent, age, state, buttons, safety questions, contact details).

The wording is taken from tests/nlu/heldout.yml (phrasings written apart from the training
data), so the NLU sees realistic, unseen text. When a button the script expects is missing
(the bot understood something else), the visitor types its title instead; when a request to
start the pre-screen is taken for something else, the visitor says "am i eligible?". Either
counts as a "deviation": the conversation goes on, and deviations are reported per
configuration. A conversation still going when a level's time is up is left there.
"""

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"

AGES = ["twenty five", "34", "i'm 41", "52", "I'm twenty one years old", "29", "age: 44", "38"]
STATES = ["TX", "California", "I live in florida", "NY", "colorado", "washington state", "Texas, USA", "I'm in Texas"]
CONCERNS = ["Depression", "Anxiety", "PTSD"]
TREATMENTS = ["Medication", "Talk therapy", "Both"]
FREQUENCIES = ["2 · More than half the days", "3 · Nearly every day"]
NO_ANSWERS = ["nope", "no", "No", "nope"]
NAMES = ["Jane Example", "Sam Placeholder", "Alex Sample", "Robin Testperson", "Kim Demo"]
PHONES = ["(212) 555-0199", "212-555-0143", "+1 303 555 0172", "(415) 555-0110"]
TIMES = ["Mornings", "Afternoons", "Evenings", "Any time"]

# A step: ("say", text), ("press", button title), or ("start", text): a request to start the
# pre-screen, said again in other words (REPHRASED) when the consent button does not come.
Step = Tuple[str, str]
START_BUTTON = "Yes, let's start"
REPHRASED = "am i eligible?"
# The last answer of a pre-screen shows this; a pre-screen played to its end without it is
# counted apart.
REFERRAL_DONE = "Your reference is"


def load_phrasings(path: Path = HELDOUT) -> Dict[str, List[str]]:
    data = yaml.safe_load(path.read_text())
    phrasings: Dict[str, List[str]] = {}
    for block in data.get("nlu", []):
        if "intent" not in block:
            continue
        examples = [line[2:].strip() for line in block["examples"].splitlines() if line.strip().startswith("- ")]
        phrasings[block["intent"]] = examples
    return phrasings


@dataclass
class Script:
    kind: str  # "questions" or "prescreen"
    steps: List[Step]


def prescreen_steps(rng: random.Random, phrasings: Dict[str, List[str]]) -> List[Step]:
    name = rng.choice(NAMES)
    email = name.lower().replace(" ", ".") + "@example.com"
    steps: List[Step] = [
        ("start", rng.choice(phrasings["start_prescreen"])),
        ("press", START_BUTTON),
        ("say", rng.choice(AGES)),
        ("say", rng.choice(STATES)),
        ("press", rng.choice(CONCERNS)),
        ("press", rng.choice(TREATMENTS)),
    ]
    steps += [("press", rng.choice(FREQUENCIES)) for _ in range(4)]  # PHQ-2 and GAD-2
    steps.append(("press", "No"))  # thoughts of ending one's life
    steps += [("say", rng.choice(NO_ANSWERS)) for _ in range(3)]  # pregnancy, psychosis, heart
    steps += [("press", "None of these"), ("press", "None of these")]  # medicines, conditions
    steps.append(("say", rng.choice(NO_ANSWERS)))  # alcohol and drugs
    steps += [
        ("press", "Yes"),  # a sober support person nearby
        ("say", name),
        ("say", email),
        ("say", rng.choice(PHONES)),
        ("press", rng.choice(TIMES)),
        ("press", "Yes, contact me"),
    ]
    return steps


def make_script(rng: random.Random, phrasings: Dict[str, List[str]], prescreen_share: float = 0.4) -> Script:
    topics = sorted(k for k in phrasings if k.startswith("faq/"))
    steps: List[Step] = [("say", rng.choice(phrasings["greet"]))]
    if rng.random() < prescreen_share:
        steps += [("say", rng.choice(phrasings[t])) for t in rng.sample(topics, rng.randint(2, 3))]
        steps += prescreen_steps(rng, phrasings)
        steps.append(("say", rng.choice(phrasings["thank"])))
        return Script("prescreen", steps)
    steps += [("say", rng.choice(phrasings[t])) for t in rng.sample(topics, rng.randint(2, 5))]
    ending = rng.random()
    if ending < 0.4:
        steps.append(("say", rng.choice(phrasings["thank"])))
    elif ending < 0.7:
        steps.append(("say", rng.choice(phrasings["goodbye"])))
    else:
        steps += [("say", rng.choice(phrasings["thank"])), ("say", rng.choice(phrasings["goodbye"]))]
    return Script("questions", steps)


class Visitors:
    """An endless, reproducible stream of visitor scripts."""

    def __init__(self, seed: int = 7, prescreen_share: float = 0.4) -> None:
        self.rng = random.Random(seed)
        self.phrasings = load_phrasings()
        self.prescreen_share = prescreen_share

    def next(self) -> Script:
        return make_script(self.rng, self.phrasings, self.prescreen_share)


@dataclass
class Turn:
    started: float  # monotonic
    latency_s: float
    ok: bool
    status: int
    kind: str  # "say", "press", "start" or "rephrase"


@dataclass
class LevelResult:
    concurrency: int
    duration_s: float
    turns: List[Turn] = field(default_factory=list)  # finished within the window
    late_turns: int = 0  # started in the window, finished after it (not counted)
    visitors_started: int = 0
    visitors_finished: int = 0
    referrals: int = 0
    prescreens_without_referral: int = 0  # played to the end, no reference given
    deviations: int = 0
    deviation_samples: List[str] = field(default_factory=list)
    error_samples: List[str] = field(default_factory=list)


class WebAppUnreachable(aiohttp.ClientConnectionError):
    """The web app closed the connection, or answered something that is not HTTP/1.1 with a length."""


class _Answer:
    """An HTTP answer as ``VisitorSession.post`` reads it (aiohttp's ClientResponse's names)."""

    def __init__(self, status: int, body: bytes, set_cookies: List[str]) -> None:
        self.status = status
        self.body = body
        self.cookies: SimpleCookie = SimpleCookie()
        for header in set_cookies:  # the first answer of a conversation only
            self.cookies.load(header)

    async def read(self) -> bytes:
        return self.body

    async def json(self, content_type: Optional[str] = None) -> Any:
        return json.loads(self.body)


class _Posting:
    """``async with client.post(...) as answer``, as with aiohttp."""

    def __init__(self, sending: Any) -> None:
        self.sending = sending

    async def __aenter__(self) -> _Answer:
        return await self.sending

    async def __aexit__(self, *_exc: Any) -> None:
        pass


class _Connection(asyncio.Protocol):
    """One keep-alive connection to the web app, one request at a time."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = bytearray()
        self.waiter: Optional[asyncio.Future] = None
        self.open = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            try:
                answer = self._answer()
            except WebAppUnreachable as exc:
                self.waiter.set_exception(exc)
                return
            if answer is not None:
                self.waiter.set_result(answer)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.open = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(WebAppUnreachable("connection closed before the answer"))

    def _answer(self) -> Optional[Tuple[_Answer, bool]]:
        """The answer once whole (and whether the connection may be used again), else None."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise WebAppUnreachable(f"not an HTTP answer: {lines[0][:40]!r}")
        length, keep_alive, set_cookies = None, parts[0] == "HTTP/1.1", []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                keep_alive = value.lower() != "close"
            elif name == "set-cookie":
                set_cookies.append(value)
            elif name == "transfer-encoding":
                raise WebAppUnreachable("a chunked answer")  # the web app's answers have a length
        if length is None:
            raise WebAppUnreachable("an answer without Content-Length")
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        return _Answer(int(parts[1]), body, set_cookies), keep_alive


class WebClient:
    """HTTP/1.1 keep-alive connections to the web app, as few lines as a visitor's POST needs:
    ``post(url, json=, headers=, timeout=)`` sends the very bytes aiohttp's ClientSession sends
    (the same request line, headers in the same order, body), and answers with what
    VisitorSession reads of aiohttp's response (status, read(), json(), cookies). aiohttp's
    client cost the load generator about 0.25 ms of CPU a turn, on the cores the stack is
    measured on; this a fifth of it. Failures are aiohttp.ClientConnectionError or
    asyncio.TimeoutError, as aiohttp's."""

    USER_AGENT = f"Python/3.10 aiohttp/{aiohttp.__version__}"

    def __init__(self, web_url: str) -> None:
        url = urlsplit(web_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.netloc = url.netloc
        self._idle: List[_Connection] = []

    def post(self, url: str, json: Any, headers: Dict[str, str], timeout: aiohttp.ClientTimeout) -> _Posting:
        return _Posting(self._post(url, json, headers, timeout.total))

    async def _post(self, url: str, body: Any, headers: Dict[str, str], timeout_s: Optional[float]) -> _Answer:
        data = _dumps(body).encode()
        head = [f"POST {urlsplit(url).path} HTTP/1.1", f"Host: {self.netloc}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head += ["Accept: */*", "Accept-Encoding: gzip, deflate", f"User-Agent: {self.USER_AGENT}",
                 f"Content-Length: {len(data)}", "Content-Type: application/json", "", ""]
        while self._idle and (not self._idle[-1].open or self._idle[-1].buffer):  # closed, or sent more
            self._idle.pop().transport.close()  # type: ignore[union-attr]
        connection = self._idle.pop() if self._idle else await self._connect()
        connection.waiter = asyncio.get_running_loop().create_future()
        assert connection.transport is not None
        connection.transport.write("\r\n".join(head).encode("latin-1") + data)
        try:
            answer, keep_alive = await asyncio.wait_for(connection.waiter, timeout_s)
        except BaseException:
            connection.transport.close()
            raise
        if keep_alive and connection.open and not connection.buffer:
            self._idle.append(connection)
        else:
            connection.transport.close()
        return answer

    async def _connect(self) -> _Connection:
        try:
            _transport, connection = await asyncio.get_running_loop().create_connection(
                _Connection, self.host, self.port)
        except OSError as exc:
            raise WebAppUnreachable(f"cannot connect: {type(exc).__name__}") from exc
        return connection

    async def close(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()

    async def __aenter__(self) -> "WebClient":
        return self

    async def __aexit__(self, *_exc: Any) -> None:
        await self.close()


_dumps = json.dumps  # the module's name ``json`` is taken by post()'s keyword (as aiohttp's)


class VisitorSession:
    """One visitor's cookie and the bot's last answer (for its buttons). ``http``: a WebClient
    (or an aiohttp.ClientSession, which it stands in for)."""

    def __init__(self, http: Any, web_url: str) -> None:
        self.http = http
        self.url = web_url + "/api/chat"
        self.cookie: Optional[str] = None
        self.last: Dict[str, Any] = {}

    def find_button(self, title: str) -> Optional[Dict[str, str]]:
        for message in self.last.get("messages") or []:
            for b in message.get("buttons") or []:
                if b.get("title") == title:
                    return b
        return None

    async def post(self, body: Dict[str, Any], timeout_s: float) -> Tuple[int, Dict[str, Any], str]:
        body["id"] = str(uuid.uuid4())
        headers = {"Cookie": f"cid={self.cookie}"} if self.cookie else {}
        async with self.http.post(self.url, json=body, headers=headers,
                                  timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            raw = await resp.read()
            if self.cookie is None and "cid" in resp.cookies:
                self.cookie = resp.cookies["cid"].value
            if resp.status != 200:
                return resp.status, {}, raw[:200].decode(errors="replace")
            return resp.status, await resp.json(content_type=None), ""


def rasa_message(kind: str, value: str, last: List[Dict[str, Any]]) -> Tuple[str, Dict[str, Any]]:
    """A script step as the text and metadata the web app sends Rasa, for players that call Rasa
    in-process (scripts/bench_profile.py, tests): a pressed button's payload, shown as its title,
    when one of ``last`` (Rasa's previous answers) offers it; the text otherwise."""
    if kind == "press":
        found = [b for m in last for b in m.get("buttons") or [] if b.get("title") == value]
        if found:
            return found[0]["payload"], {"display": value}
    return value, {}


async def run_visitor(visitor: VisitorSession, script: Script, result: LevelResult, deadline: float,
                      timeout_s: float) -> None:
    """Play one script until it ends or the level's window closes (between turns)."""
    referred = False
    steps = list(script.steps)
    while steps:
        kind, value = steps.pop(0)
        if time.monotonic() >= deadline:
            return
        body: Dict[str, Any] = {"message": value}
        if kind == "press":
            b = visitor.find_button(value)
            if b is None:
                result.deviations += 1
                if len(result.deviation_samples) < 10:
                    said = " | ".join((m.get("text") or "")[:60] for m in visitor.last.get("messages") or [])
                    result.deviation_samples.append(f"no button {value!r} after: {said}")
            else:
                body = {"button": {"payload": b["payload"], "sig": b["sig"], "title": b["title"]}}
        started = time.monotonic()
        try:
            status, answer, error = await visitor.post(body, timeout_s)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            status, answer, error = 0, {}, type(exc).__name__
        finished = time.monotonic()
        turn = Turn(started, finished - started, status == 200, status, kind)
        if finished <= deadline:
            result.turns.append(turn)
        else:
            result.late_turns += 1
        if not turn.ok:
            if len(result.error_samples) < 5:
                result.error_samples.append(f"HTTP {status}: {error}")
            return  # a broken conversation is not continued
        visitor.last = answer
        if kind == "start" and visitor.find_button(START_BUTTON) is None:
            result.deviations += 1
            if len(result.deviation_samples) < 10:
                result.deviation_samples.append(f"no pre-screen after {value!r}: said again")
            steps.insert(0, ("rephrase", REPHRASED))
        if script.kind == "prescreen" and any(REFERRAL_DONE in (m.get("text") or "") for m in answer.get("messages") or []):
            referred = True
    result.visitors_finished += 1
    if script.kind == "prescreen":
        if referred:
            result.referrals += 1
        else:
            result.prescreens_without_referral += 1


async def run_level(web_url: str, visitors: Visitors, concurrency: int, duration_s: float,
                    timeout_s: float = 60.0) -> LevelResult:
    """A closed loop: ``concurrency`` visitors at a time, each replaced by a new one when done."""
    result = LevelResult(concurrency, duration_s)
    async with WebClient(web_url) as http:
        deadline = time.monotonic() + duration_s

        async def worker() -> None:
            while time.monotonic() < deadline:
                script = visitors.next()
                result.visitors_started += 1
                await run_visitor(VisitorSession(http, web_url), script, result, deadline, timeout_s)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


def percentile(values: List[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarize(result: LevelResult) -> Dict[str, Any]:
    ok = [t.latency_s * 1000 for t in result.turns if t.ok]
    errors = sum(1 for t in result.turns if not t.ok)
    return {
        "concurrency": result.concurrency,
        "duration_s": result.duration_s,
        "turns": len(result.turns),
        "turns_per_s": round(len(ok) / result.duration_s, 2),
        "p50_ms": round(percentile(ok, 50), 1),
        "p95_ms": round(percentile(ok, 95), 1),
        "p99_ms": round(percentile(ok, 99), 1),
        "max_ms": round(max(ok), 1) if ok else None,
        "mean_ms": round(sum(ok) / len(ok), 1) if ok else None,
        "errors": errors,
        "error_samples": result.error_samples,
        "late_turns": result.late_turns,
        "visitors_started": result.visitors_started,
        "visitors_finished": result.visitors_finished,
        "referrals": result.referrals,
        "prescreens_without_referral": result.prescreens_without_referral,
        "deviations": result.deviations,
        "deviation_samples": result.deviation_samples,
    }
