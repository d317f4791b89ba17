"""Settings, read in one place.

The clinic's identity and contact details come from ``settings/clinic.yml``
and its pre-screen rules from ``settings/eligibility.yml``. Deployment
settings (database URLs, ports, secrets) come from environment variables,
with safe local defaults: SQLite files under ``var/``, services on loopback.

The web app:

- ``WEB_HOST`` (``127.0.0.1``), ``WEB_PORT`` (``8000``); ``RASA_URL``
  (``http://127.0.0.1:5005,http://127.0.0.1:5006``: the two Rasa servers of
  ``make run``, sharing ``var/locks.db``). ``RASA_URL`` may list several Rasa servers,
  comma-separated: each conversation goes to one of them
  (``clinic.rasa_runtime.rasa_client``), and to another when that one cannot be reached.
- ``RASA_TOKEN`` (unset: generated once into ``var/rasa_token``, mode 0600): the
  token of Rasa's HTTP API. The Rasa server is started with it
  (``python -m clinic.rasa_runtime.rasa_launch``), the web app and the console send it. Set
  it, the same everywhere, when Rasa and the apps do not share one ``var/``.
- ``ACTION_SERVER_TOKEN`` (unset: generated once into ``var/action_token``, mode
  0600): the secret the Rasa server sends the action server with each call
  (``Authorization: Bearer``, endpoints.yml) and the action server requires on
  every ``/webhook`` call (``python -m clinic.rasa_runtime.action_launch``). Set it, the same
  for both, when they do not share one ``var/``.
- ``WIDGET_ALLOWED_ORIGINS`` (unset): comma-separated origins of other sites
  that may embed the chat widget (CORS on the visitor API).
- ``HSTS_SECONDS`` (``0``: off): in production behind HTTPS, e.g. ``31536000``; the web app and the
  console then send ``Strict-Transport-Security`` so browsers never use plain HTTP for them.
- ``COOKIE_SECURE`` (``false``; true in production behind HTTPS) and
  ``COOKIE_SAMESITE`` (``Lax``; ``None`` with ``COOKIE_SECURE`` for a widget
  embedded on another site).
- ``CLINIC_SECRET_KEY`` (unset: generated into ``var/secret_key``) signs the
  conversation cookie and the bot's buttons.
- ``MAX_MESSAGE_CHARS`` (``2000``), ``MAX_BODY_BYTES`` (``65536``: larger bodies are cut off unread).
- ``RATE_LIMIT_MESSAGES`` (``30/2``: a burst of 30 messages per conversation, then 2 a second),
  ``RATE_LIMIT_NEW_VISITORS`` (``60/1``: new conversations per address, "start over" included),
  ``RATE_LIMIT_READS`` (``60/2``: history, updates and leaving the queue, per conversation) and
  ``RATE_LIMIT_ADDRESS`` (``600/20``: every visitor API request, per address); ``off`` turns one
  off (a load test whose simulated visitors all come from one address). One long poll
  (``/api/updates``) open per conversation at a time.
- ``TRUSTED_PROXIES`` (unset): comma-separated addresses or networks of the HTTPS proxies in front
  of the web app and the console (e.g. ``10.0.0.5,10.1.0.0/16``). Only a request from one of them
  is taken to come from the address its ``X-Forwarded-For`` names (the right-most address not
  itself a trusted proxy); any other request from its TCP peer. Unset: the TCP peer always.
- ``VISITOR_IDLE_DAYS`` (``30``): a visitor's conversation cookie carries its issue time in its
  signature and is issued anew with each answer; one not renewed for this long starts a new
  conversation. With ``COOKIE_SECURE`` the cookie is named ``__Host-cid`` (Secure, Path=/, no
  Domain: no other host can set or shadow it).

Past one machine (docs/DEPLOYMENT.md):

- ``DATABASE_URL`` (unset): one database for the clinic DB and Rasa's tracker
  store, e.g. ``postgresql://clinic:secret@db.internal:5432/clinic``; the default
  of ``CLINIC_DB_URL`` and ``TRACKER_DB_URL`` (which still override it). Rasa
  reads it through ``endpoints.scale.yml``.
- ``DB_POOL_SIZE`` (``5``) and ``DB_MAX_OVERFLOW`` (``10``): connections each
  process keeps open to a server database (not SQLite), and how many more it
  may open at a peak.
- ``REDIS_URL`` (unset): ``redis://host:6379/0``; when set, the web app keeps
  its reply cache and rate limits in Redis, shared by every web-app process
  (in memory, per process, otherwise). Rasa's lock store reads it through
  ``endpoints.scale.yml``.

The staff console (``python -m clinic.console``):

- ``CONSOLE_HOST`` (``127.0.0.1``), ``CONSOLE_PORT`` (``8001``).
- ``TRAINING_DATA_DIR`` (``<project>/data``): where corrections staff accept are written as
  training data (``reviewed/``, ``safety/reviewed.yml``, ``safety/hard_negatives_reviewed.yml``).
- ``TRACKER_DB_URL`` (``DATABASE_URL``, else ``sqlite:///<project>/var/tracker.db``):
  Rasa's tracker store, read by the console (read-only on SQLite), the same
  database as in endpoints.yml.
- ``STAFF_SESSION_HOURS`` (``8``), ``STAFF_IDLE_MINUTES`` (``30``): sessions end
  after this long, or after this long without a request.
- ``LOGIN_ATTEMPTS`` (``10/0.1``: a burst of 10 sign-ins per address, then one every 10 s).
- ``RETENTION_DAYS`` (``365``): conversations older than this are deleted by
  ``python -m clinic.console.purge``; the chat's privacy notice (the greeting and the
  widget's line) quotes it, so set it alike for every process.

Live handoff (``clinic.rules.handoff``, ``clinic.rules.staffing``):

- ``STAFFING_FILE`` (``settings/staffing.yml``): the time zone, weekly hours and
  holidays when people answer the live chat; outside them a visitor who asks
  for a person leaves a callback request. Read again when the file changes.
- ``CANNED_REPLIES_FILE`` (``settings/canned_replies.yml``): the live chat's canned replies, which
  admins edit in the console (``clinic.console.canned_replies`` rewrites the file).

Referral notices (``clinic.mail.notifier``) and encryption:

- ``SMTP_HOST`` (``127.0.0.1``), ``SMTP_PORT`` (``1025``): the mail server.
- ``SMTP_SENDER`` (``assistant@localhost``): the From address.
- ``SMTP_RECIPIENTS`` (``clinicians@localhost``): comma-separated To addresses.
- ``SMTP_STARTTLS`` (``false``): upgrade the connection with STARTTLS.
- ``SMTP_USERNAME`` / ``SMTP_PASSWORD`` (unset): log in when a username is set
  (use STARTTLS with them, or the password crosses the network in clear).
- ``SMTP_TIMEOUT_S`` (``10``): seconds before a mail server is given up on.
- ``CONSOLE_URL`` (``http://127.0.0.1:8001``): staff console base URL, for
  the link in a notice.
- ``NOTIFY_RETRY_SECONDS`` (``60``): how often the notifier worker retries
  notices not sent yet.
- ``CLINIC_ENCRYPTION_KEY`` (unset): the clinic's key (a Fernet key). It encrypts contact
  details and answers in the clinic DB's columns (Fernet), and every SQLite file under
  ``var/`` whole (SQLCipher, with a key derived from it: ``clinic.storage.encrypted_sqlite``). When
  unset, a key is generated once into ``var/encryption_key`` (mode 0600) and reused. Losing
  that key loses every conversation and referral stored: back it up apart from the database
  and its backups.
- ``CLINIC_VAR_DIR`` (``<project>/var``): where the SQLite files, generated keys, spool and
  backups live; mode 0700, every file in it 0600 (``secure_var_dir``).
"""

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import yaml

from clinic.rules import us_states

ROOT = Path(__file__).resolve().parent.parent
RASA_TOKEN_MIN_CHARS = 16


PATCHES_SWITCH = "CLINIC_RASA_PATCHES"  # "0": none of the clinic's patches of third-party internals


def patches_enabled() -> bool:
    """Whether the clinic's patches of third-party internals are to be used (those of Rasa in
    clinic/rasa_runtime/patches/, and the NER's direct forward of clinic/nlu/ner_tok2vec.py):
    ``CLINIC_RASA_PATCHES`` unset or ``1``/``true``/``on``/``yes``; ``0``/``false``/``off``/``no``
    switch them off; any other value is refused (a typo must not leave them silently on or off)."""
    value = os.environ.get(PATCHES_SWITCH, "1").strip().lower()
    if value in ("1", "true", "on", "yes", ""):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    raise ValueError(f"{PATCHES_SWITCH}={value!r}: use 1 (the patches on) or 0 (the libraries' own code)")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class ClinicInfo:
    """``settings/clinic.yml``: the clinic's identity, contacts and the facts its answers quote."""

    name: str
    phone: str
    email: str
    website: str
    privacy_url: str
    # The telehealth prescribing of a controlled drug without an in-person exam rests on temporary
    # DEA rules: the day they end as the clinic last checked, and the day the legal answer
    # (utter_faq/legal_status) was last reviewed.
    dea_telehealth_rule_ends: dt.date
    legal_answer_reviewed: dt.date
    monthly_price_usd: Optional[float] = None  # unset: the pricing answer says the team gives the price

    @property
    def support_hours(self) -> str:
        """When people answer, in words, from settings/staffing.yml (the live chat's own hours)."""
        from clinic.rules.staffing import describe_hours, load_staffing

        return describe_hours(load_staffing())

    @property
    def monthly_price(self) -> Optional[str]:
        """The price as the answers quote it ("$399 a month"), or None when the clinic set none."""
        if self.monthly_price_usd is None:
            return None
        amount = self.monthly_price_usd
        figure = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
        return f"${figure} a month"


@dataclass(frozen=True)
class Settings:
    settings_dir: Path
    var_dir: Path
    clinic_db_url: str = field(repr=False)  # may hold a password
    rasa_url: str
    web_host: str
    web_port: int
    cookie_secure: bool
    max_message_chars: int
    max_body_bytes: int
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_sender: str = "assistant@localhost"
    smtp_recipients: Tuple[str, ...] = ("clinicians@localhost",)
    smtp_starttls: bool = False
    smtp_username: Optional[str] = None
    smtp_password: Optional[str] = field(default=None, repr=False)
    smtp_timeout_s: float = 10.0
    console_url: str = "http://127.0.0.1:8001"
    notify_retry_seconds: float = 60.0
    # where the console writes the corrections staff accept (data/reviewed/, data/safety/reviewed*.yml)
    training_data_dir: Path = ROOT / "data"
    widget_allowed_origins: Tuple[str, ...] = ()
    cookie_samesite: str = "Lax"
    hsts_seconds: int = 0
    tracker_db_url: str = field(default="sqlite:///var/tracker.db", repr=False)
    console_host: str = "127.0.0.1"
    console_port: int = 8001
    staff_session_hours: float = 8.0
    staff_idle_minutes: float = 30.0
    retention_days: int = 365
    rate_limit_messages: Optional[Tuple[float, float]] = (30.0, 2.0)  # (burst, per second); None = off
    rate_limit_new_visitors: Optional[Tuple[float, float]] = (60.0, 1.0)
    rate_limit_reads: Optional[Tuple[float, float]] = (60.0, 2.0)
    rate_limit_address: Optional[Tuple[float, float]] = (600.0, 20.0)
    login_attempts: Optional[Tuple[float, float]] = (10.0, 0.1)  # console sign-ins per address
    trusted_proxies: Tuple[Any, ...] = ()  # ipaddress networks
    visitor_idle_days: float = 30.0
    redis_url: Optional[str] = field(default=None, repr=False)  # may hold a password
    db_pool_size: int = 5
    db_max_overflow: int = 10

    @property
    def rasa_urls(self) -> Tuple[str, ...]:
        """Every Rasa server of RASA_URL."""
        return tuple(self.rasa_url.split(","))

    @property
    def hsts_header(self) -> Optional[str]:
        """The Strict-Transport-Security value, when HSTS is on (production behind HTTPS)."""
        return f"max-age={self.hsts_seconds}; includeSubDomains" if self.hsts_seconds > 0 else None

    @property
    def clinic(self) -> ClinicInfo:
        return load_clinic_info(self.settings_dir)

    @property
    def eligibility(self) -> Dict[str, Any]:
        return load_yaml(self.settings_dir / "eligibility.yml")

    @property
    def secret_key(self) -> bytes:
        return load_secret(self.var_dir)

    @property
    def encryption_key(self) -> bytes:
        return load_encryption_key(self.var_dir)

    @property
    def rasa_token(self) -> str:
        return load_rasa_token(self.var_dir)

    @property
    def action_token(self) -> str:
        return load_action_token(self.var_dir)


@lru_cache(maxsize=None)
def get_settings() -> Settings:
    var_dir = Path(_env("CLINIC_VAR_DIR", str(ROOT / "var")))
    secure_var_dir(var_dir)
    database_url = _env("DATABASE_URL", "")
    return Settings(
        settings_dir=Path(_env("CLINIC_SETTINGS_DIR", str(ROOT / "settings"))),
        var_dir=var_dir,
        clinic_db_url=_env("CLINIC_DB_URL", database_url or f"sqlite:///{var_dir / 'clinic.db'}"),
        rasa_url=",".join(_env_list("RASA_URL", "http://127.0.0.1:5005,http://127.0.0.1:5006", strip="/")),
        web_host=_env("WEB_HOST", "127.0.0.1"),
        web_port=int(_env("WEB_PORT", "8000")),
        cookie_secure=_env("COOKIE_SECURE", "false").lower() in ("1", "true", "yes"),
        max_message_chars=int(_env("MAX_MESSAGE_CHARS", "2000")),
        max_body_bytes=int(_env("MAX_BODY_BYTES", "65536")),
        widget_allowed_origins=tuple(
            o.strip().rstrip("/") for o in _env("WIDGET_ALLOWED_ORIGINS", "").split(",") if o.strip()
        ),
        cookie_samesite=_env("COOKIE_SAMESITE", "Lax"),
        hsts_seconds=int(_env("HSTS_SECONDS", "0")),
        tracker_db_url=_env("TRACKER_DB_URL", database_url or f"sqlite:///{var_dir / 'tracker.db'}"),
        redis_url=_env("REDIS_URL", "") or None,
        db_pool_size=_env_int("DB_POOL_SIZE", "5", minimum=1),
        db_max_overflow=_env_int("DB_MAX_OVERFLOW", "10", minimum=0),
        console_host=_env("CONSOLE_HOST", "127.0.0.1"),
        console_port=int(_env("CONSOLE_PORT", "8001")),
        staff_session_hours=float(_env("STAFF_SESSION_HOURS", "8")),
        staff_idle_minutes=float(_env("STAFF_IDLE_MINUTES", "30")),
        retention_days=int(_env("RETENTION_DAYS", "365")),
        rate_limit_messages=_rate("RATE_LIMIT_MESSAGES", "30/2"),
        rate_limit_new_visitors=_rate("RATE_LIMIT_NEW_VISITORS", "60/1"),
        rate_limit_reads=_rate("RATE_LIMIT_READS", "60/2"),
        rate_limit_address=_rate("RATE_LIMIT_ADDRESS", "600/20"),
        login_attempts=_rate("LOGIN_ATTEMPTS", "10/0.1"),
        trusted_proxies=_networks("TRUSTED_PROXIES"),
        visitor_idle_days=float(_env("VISITOR_IDLE_DAYS", "30")),
        smtp_host=_env("SMTP_HOST", "127.0.0.1"),
        smtp_port=int(_env("SMTP_PORT", "1025")),
        smtp_sender=_env("SMTP_SENDER", "assistant@localhost"),
        smtp_recipients=_env_list("SMTP_RECIPIENTS", "clinicians@localhost"),
        smtp_starttls=_env_bool("SMTP_STARTTLS", "false"),
        smtp_username=os.environ.get("SMTP_USERNAME", "").strip() or None,
        smtp_password=os.environ.get("SMTP_PASSWORD") or None,
        smtp_timeout_s=float(_env("SMTP_TIMEOUT_S", "10")),
        console_url=_env("CONSOLE_URL", "http://127.0.0.1:8001").rstrip("/"),
        notify_retry_seconds=float(_env("NOTIFY_RETRY_SECONDS", "60")),
        training_data_dir=Path(_env("TRAINING_DATA_DIR", str(ROOT / "data"))),
    )


def _rate(name: str, default: str) -> Optional[Tuple[float, float]]:
    """ "burst/per_second", or "off"."""
    value = _env(name, default).lower()
    if value == "off":
        return None
    try:
        burst, per_second = (float(part) for part in value.split("/"))
    except ValueError:
        raise ValueError(f"{name}: expected BURST/PER_SECOND (e.g. 30/2) or off, got {value!r}") from None
    if burst < 1 or per_second <= 0:
        raise ValueError(f"{name}: the burst must be at least 1 and the rate above 0")
    return burst, per_second


def _networks(name: str) -> Tuple[Any, ...]:
    """Comma-separated addresses or networks (``10.0.0.5``, ``10.1.0.0/16``, ``::1``)."""
    import ipaddress

    networks = []
    for item in _env(name, "").split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{name}: {item.strip()!r} is not an address or network") from None
    return tuple(networks)


def _env_bool(name: str, default: str) -> bool:
    return _env(name, default).lower() in ("1", "true", "yes")


def _env_list(name: str, default: str, strip: str = "") -> Tuple[str, ...]:
    items = tuple(item.strip().rstrip(strip) for item in _env(name, default).split(",") if item.strip())
    if not items:
        raise ValueError(f"{name}: expected at least one address")
    return items


def _env_int(name: str, default: str, minimum: int) -> int:
    try:
        value = int(_env(name, default))
    except ValueError:
        raise ValueError(f"{name}: expected a whole number") from None
    if value < minimum:
        raise ValueError(f"{name}: expected at least {minimum}")
    return value


def load_yaml(path: Path) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def load_clinic_info(settings_dir: Path) -> ClinicInfo:
    """settings/clinic.yml, read again when the file changes."""
    path = settings_dir / "clinic.yml"
    stat = path.stat()
    return _clinic_info(str(path), stat.st_mtime_ns, stat.st_size)


CLINIC_TEXT_KEYS = ("name", "phone", "email", "website", "privacy_url")
CLINIC_DATE_KEYS = ("dea_telehealth_rule_ends", "legal_answer_reviewed")


@lru_cache(maxsize=8)
def _clinic_info(path: str, mtime_ns: int, size: int) -> ClinicInfo:
    data = load_yaml(Path(path))
    missing = [k for k in CLINIC_TEXT_KEYS + CLINIC_DATE_KEYS if not data.get(k)]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    if "support_hours" in data:
        raise ValueError(f"{path}: support_hours is no longer read: the hours quoted come from staffing.yml")
    dates = {}
    for key in CLINIC_DATE_KEYS:
        value = data[key]
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise ValueError(f"{path}: {key} must be a date written YYYY-MM-DD, got {value!r}")
        dates[key] = value
    price = data.get("monthly_price_usd")
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float)) or price <= 0):
        raise ValueError(f"{path}: monthly_price_usd must be a number of dollars above 0 (or left out), got {price!r}")
    return ClinicInfo(
        **{k: str(data[k]) for k in CLINIC_TEXT_KEYS},
        **dates,
        monthly_price_usd=float(price) if price is not None else None,
    )


def spoken_date(day: dt.date) -> str:
    """ "December 31, 2026": how the answers say a date."""
    return f"{day.strftime('%B')} {day.day}, {day.year}"


def public_facts(settings: Settings) -> Dict[str, Optional[str]]:
    """The values the assistant's answers may quote (slot name -> text; None: not set)."""
    clinic = settings.clinic
    rules = settings.eligibility
    return {
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "clinic_email": clinic.email,
        "clinic_website": clinic.website,
        "clinic_hours": clinic.support_hours,
        "clinic_states": us_states.describe(rules.get("states_served", [])),
        "min_age": str(rules.get("min_age", 18)),
        "clinic_price": clinic.monthly_price,
        "privacy_url": clinic.privacy_url,
        "dea_rule_end": spoken_date(clinic.dea_telehealth_rule_ends),
        "legal_reviewed": spoken_date(clinic.legal_answer_reviewed),
        "retention_period": f"{settings.retention_days} days",  # how long conversations are kept
    }


def load_secret(var_dir: Path) -> bytes:
    """CLINIC_SECRET_KEY if set, else a key generated once into var/secret_key."""
    from_env = os.environ.get("CLINIC_SECRET_KEY", "").strip()
    if from_env:
        return from_env.encode()
    path = var_dir / "secret_key"
    if not path.exists():
        _create_once(path, secrets.token_hex(32).encode())
    return path.read_bytes().strip()


def load_rasa_token(var_dir: Path) -> str:
    """RASA_TOKEN if set, else a token generated once into var/rasa_token (mode 0600).

    The token of Rasa's HTTP API: the Rasa server started by ``clinic.rasa_runtime.rasa_launch``
    requires it, the web app and the console send it. Raises ValueError when the token
    found is shorter than 16 characters (an empty one would let anyone in).
    """
    return _load_token("RASA_TOKEN", var_dir / "rasa_token", "Rasa's API token")


def load_action_token(var_dir: Path) -> str:
    """ACTION_SERVER_TOKEN if set, else a secret generated once into var/action_token (mode 0600).

    The secret the Rasa server sends the action server with every call (``Authorization:
    Bearer``: endpoints.yml, filled in by ``clinic.rasa_runtime.rasa_launch``) and the action server
    checks (``clinic.rasa_runtime.action_launch``). At least 16 characters, like Rasa's token."""
    return _load_token("ACTION_SERVER_TOKEN", var_dir / "action_token", "the action server's secret")


def _load_token(env_name: str, path: Path, what: str) -> str:
    from_env = os.environ.get(env_name, "").strip()
    if from_env:
        token, source = from_env, env_name
    else:
        if not path.exists():
            _create_once(path, secrets.token_hex(32).encode())
        token, source = path.read_text().strip(), str(path)
    if len(token) < RASA_TOKEN_MIN_CHARS:
        raise ValueError(f"{source}: {what} must be at least {RASA_TOKEN_MIN_CHARS} characters")
    return token


def load_encryption_key(var_dir: Path) -> bytes:
    """CLINIC_ENCRYPTION_KEY if set, else a Fernet key generated once into var/encryption_key.

    Created the way ``load_secret`` creates its key (a private temporary file
    linked into place), so processes starting at once share one key. Raises
    ValueError when the key found is not a valid Fernet key.
    """
    from cryptography.fernet import Fernet

    from_env = os.environ.get("CLINIC_ENCRYPTION_KEY", "").strip()
    if from_env:
        key, source = from_env.encode(), "CLINIC_ENCRYPTION_KEY"
    else:
        path = var_dir / "encryption_key"
        if not path.exists():
            _create_once(path, Fernet.generate_key())
        key, source = path.read_bytes().strip(), str(path)
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise ValueError(f"{source}: not a valid Fernet key (32 url-safe base64-encoded bytes)") from None
    return key


def secure_var_dir(var_dir: Path) -> None:
    """``var/``, when it exists, and everything in it its owner's only: folders 0700, files 0600
    (what was made before the umask of ``clinic/__init__.py``, or copied in; what is made later is
    so by that umask). What belongs to another account (PostgreSQL's data of ``make scale-up``, run
    as ``postgres``) is left as it is."""
    if not var_dir.is_dir():
        return
    uid = os.getuid()
    for folder, dirs, files in os.walk(var_dir):
        for name, mode in [(folder, 0o700), *((os.path.join(folder, f), 0o600) for f in files)]:
            try:
                info = os.lstat(name)
                if info.st_uid == uid and not os.path.islink(name) and info.st_mode & 0o7777 != mode:
                    os.chmod(name, mode)
            except FileNotFoundError:  # gone meanwhile (a WAL checkpointed, a temporary file)
                pass
        dirs[:] = [d for d in dirs if _owned(os.path.join(folder, d), uid)]


def _owned(path: str, uid: int) -> bool:
    try:
        return os.lstat(path).st_uid == uid
    except FileNotFoundError:
        return False


def _create_once(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` (mode 0600) unless another process got there first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
