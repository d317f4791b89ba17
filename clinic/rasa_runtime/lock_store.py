"""Rasa's per-conversation lock, safe when several Rasa servers share it: in Redis (several
machines) or in a SQLite file (several Rasa servers on one machine, `make run`).

Rasa takes a ticket lock per conversation around each message (and each HTTP API call that
changes a tracker), so that the messages of one conversation are processed one at a time and
in the order they arrived, whichever server received them. Rasa 3.6's own ``RedisLockStore``
reads the lock, changes it and writes it back in separate steps: two servers issuing tickets
for one conversation at the same moment overwrite each other's, and messages are then
processed at once (events lost) or dropped with a ``LockError`` (seen with 20 messages sent to
two servers at once: 7 lost). These stores make each change one transaction: WATCH/MULTI in
Redis, ``BEGIN IMMEDIATE`` in SQLite. A ticket issued first in line is the lock at once (no
second look); in SQLite, taking a lock nobody holds and releasing it untouched are one
statement each (an insert unless a live lock is there, a delete of the row exactly as written).

A ticket is a lease: it lives ``lease_seconds`` (15) and its holder renews it every third of
that while it waits or works, so a server that dies holding a ticket blocks its conversation
for at most ``lease_seconds`` (Rasa's fixed ticket lifetime, 60 s by default, would outlast the
web app's 30 s wait for the retried message). Waiters look again every ``poll_seconds`` (0.05)
rather than Rasa's 1 s.

endpoints.scale.yml::

    lock_store:
      type: clinic.rasa_runtime.lock_store.RedisTicketLockStore
      url: ${REDIS_URL}            # redis://[:password@]host:port/db, rediss:// for TLS
      lease_seconds: 15            # optional

endpoints.yml::

    lock_store:
      type: clinic.rasa_runtime.lock_store.SQLiteTicketLockStore
      db: "var/locks.db"

The SQLite file is encrypted whole with SQLCipher (``clinic.storage.encrypted_sqlite``, the clinic's key):
it holds conversation ids only, but every file under ``var/`` is encrypted alike.
"""

import asyncio
import json
import logging
import math
import sqlite3
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncGenerator, Callable, Dict, Optional, Tuple, Type

import redis

from clinic.storage import encrypted_sqlite
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore

logger = logging.getLogger(__name__)

KEY_PREFIX = "lock:"  # Rasa's own prefix for conversation locks

Change = Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], Any]]


def _options(endpoint_config: Any, **defaults: Any) -> Dict[str, Any]:
    """The store's options: the defaults, overridden by its endpoints.yml entry when Rasa makes it
    from there (a lock store named by its class path gets the entry as ``endpoint_config``)."""
    given = (endpoint_config.kwargs or {}) if endpoint_config is not None else {}
    return {name: type(default)(given.get(name, default)) for name, default in defaults.items()}


class TransactionalTicketLockStore(LockStore):
    """Rasa's ticket lock with every read-change-write as one transaction of the store
    (``_transact``), tickets as leases renewed while held, and quick polling."""

    lease_seconds: float
    poll_seconds: float
    store_errors: Tuple[Type[BaseException], ...] = ()

    def _transact(self, conversation_id: str, change: Change) -> Any:
        """Read the lock, change it, write it back (or delete it when no ticket is left) as one
        transaction."""
        raise NotImplementedError

    def _set_timing(self, lease_seconds: float, poll_seconds: float) -> None:
        if lease_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("lease_seconds and poll_seconds must be above 0")
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds

    # --- every read-change-write of the base class, as one transaction ---------

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        return self._issue(conversation_id)[0]

    def _issue(self, conversation_id: str) -> Tuple[int, TicketLock, Optional[str]]:
        """A new ticket, the lock as the transaction that issued it left it, and (when the store
        can release it in one step, see ``_release``) the lock as written."""

        def change(lock: Optional[TicketLock]) -> Tuple[TicketLock, Tuple[int, TicketLock, None]]:
            lock = lock or self.create_lock(conversation_id)
            return lock, (lock.issue_ticket(self.lease_seconds), lock, None)

        try:
            return self._transact(conversation_id, change)
        except self.store_errors as exc:
            raise LockError(f"Error while acquiring lock: {type(exc).__name__}") from exc

    def _release(self, conversation_id: str, ticket_number: int, written: Optional[str]) -> None:
        """The ticket is done (``written``: the lock as ``_issue`` wrote it, or None)."""
        self.cleanup(conversation_id, ticket_number)

    def renew(self, conversation_id: str, ticket_number: int) -> bool:
        """Extend a ticket's lease; False when the ticket is gone (it expired)."""

        def change(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], bool]:
            if lock is None:
                return None, False
            for ticket in lock.tickets:
                if ticket.number == ticket_number:
                    ticket.expires = time.time() + self.lease_seconds
                    return lock, True
            return lock, False

        return self._transact(conversation_id, change)

    def update_lock(self, conversation_id: str) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, None

        self._transact(conversation_id, change)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._transact(conversation_id, change)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """The ticket is done; the lock goes when nobody waits (one step: a ticket issued in
        between is never deleted with it)."""
        self.finish_serving(conversation_id, ticket_number)

    @asynccontextmanager
    async def lock(
        self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = 1
    ) -> AsyncGenerator[TicketLock, None]:
        """The conversation's lock, held until the block ends. Rasa's ``lock_lifetime`` and
        ``wait_time_in_seconds`` give way to the lease and the poll interval."""
        ticket, issued, written = self._issue(conversation_id)
        keep_alive = asyncio.ensure_future(self._keep_alive(conversation_id, ticket))
        try:
            if not issued.is_locked(ticket):  # first in line as issued: what a first look would find
                yield issued
            else:
                yield await self._acquire_lock(conversation_id, ticket, self.poll_seconds)
        finally:
            keep_alive.cancel()
            try:
                self._release(conversation_id, ticket, written)
            except self.store_errors as exc:  # the lease runs out by itself
                logger.warning("could not release a conversation lock: %s", type(exc).__name__)

    async def _keep_alive(self, conversation_id: str, ticket: int) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not self.renew(conversation_id, ticket):
                    logger.warning("a conversation lock ticket expired before it was renewed")
                    return
            except self.store_errors as exc:
                logger.warning("could not renew a conversation lock: %s", type(exc).__name__)


class RedisTicketLockStore(TransactionalTicketLockStore):
    store_errors = (redis.RedisError,)

    def __init__(
        self,
        endpoint_config: Any = None,
        url: str = "redis://127.0.0.1:6379/0",
        lease_seconds: float = 15.0,
        poll_seconds: float = 0.05,
        socket_timeout: float = 10.0,
    ) -> None:
        if endpoint_config is not None:
            url = endpoint_config.url or url
        options = _options(endpoint_config, lease_seconds=lease_seconds, poll_seconds=poll_seconds,
                           socket_timeout=socket_timeout)
        self._set_timing(options["lease_seconds"], options["poll_seconds"])
        socket_timeout = options["socket_timeout"]
        self.red = redis.Redis.from_url(url, socket_timeout=socket_timeout)
        self.red.ping()  # fail at start, not at the first message
        super().__init__()

    def _key(self, conversation_id: str) -> str:
        return KEY_PREFIX + conversation_id

    def _transact(self, conversation_id: str, change: Change) -> Any:
        """Read the lock, change it, write it back (or delete it when no ticket is left) as one
        transaction: retried when another server changed the lock in between."""
        key = self._key(conversation_id)
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    lock, result = change(lock)
                    pipe.multi()
                    if lock is None or not lock.tickets:
                        pipe.delete(key)
                    else:  # a safety net: a lock nobody renews goes away by itself
                        pipe.set(key, lock.dumps(), ex=math.ceil(self.lease_seconds * 2))
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    # --- what LockStore reads and writes -------------------------------------

    def get_lock(self, conversation_id: str) -> Optional[TicketLock]:
        raw = self.red.get(self._key(conversation_id))
        return TicketLock.from_dict(json.loads(raw)) if raw else None

    def delete_lock(self, conversation_id: str) -> None:
        self.red.delete(self._key(conversation_id))

    def save_lock(self, lock: TicketLock) -> None:
        self.red.set(self._key(lock.conversation_id), lock.dumps(), ex=math.ceil(self.lease_seconds * 2))


class SQLiteTicketLockStore(TransactionalTicketLockStore):
    """The lock in a SQLite file shared by the Rasa servers of one machine (WAL; each change one
    ``BEGIN IMMEDIATE`` transaction, so two servers never interleave). A row also carries when it
    goes stale (twice the lease), as Redis's expiry does: a lock nobody renews is read as none."""

    store_errors = (sqlite3.Error, encrypted_sqlite.Error)

    def __init__(
        self,
        endpoint_config: Any = None,
        db: str = "var/locks.db",
        lease_seconds: float = 15.0,
        poll_seconds: float = 0.05,
        busy_timeout_s: float = 5.0,
    ) -> None:
        options = _options(endpoint_config, db=db, lease_seconds=lease_seconds, poll_seconds=poll_seconds,
                           busy_timeout_s=busy_timeout_s)
        self._set_timing(options["lease_seconds"], options["poll_seconds"])
        db, busy_timeout_s = options["db"], options["busy_timeout_s"]
        self.path = Path(db)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._mutex = threading.Lock()  # one connection, used by one thread at a time
        self._conn = encrypted_sqlite.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                              check_same_thread=False)
        with self._mutex:
            self._while_locked(self._set_up, busy_timeout_s)
        super().__init__()

    def _set_up(self) -> None:
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS conversation_locks "
            "(conversation_id TEXT PRIMARY KEY, lock TEXT NOT NULL, stale_at REAL NOT NULL)"
        )
        self._conn.execute("DELETE FROM conversation_locks WHERE stale_at < ?", (time.time(),))

    def _while_locked(self, step: Callable[[], None], timeout_s: float) -> None:
        """Runs ``step`` again while another server holds the file. Two servers starting at once on
        a new file both turn it to WAL: SQLite answers "database is locked" at once, without waiting
        for its busy timeout (the wait could deadlock), so the wait is here."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                step()
                return
            except self.store_errors as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(self.poll_seconds)

    def _read(self, conversation_id: str) -> Optional[TicketLock]:
        row = self._conn.execute(
            "SELECT lock FROM conversation_locks WHERE conversation_id = ? AND stale_at >= ?",
            (conversation_id, time.time()),
        ).fetchone()
        return TicketLock.from_dict(json.loads(row[0])) if row else None

    def _write(self, lock: Optional[TicketLock], conversation_id: str) -> None:
        if lock is None or not lock.tickets:
            self._conn.execute("DELETE FROM conversation_locks WHERE conversation_id = ?", (conversation_id,))
        else:
            self._conn.execute(
                "INSERT INTO conversation_locks (conversation_id, lock, stale_at) VALUES (?, ?, ?) "
                "ON CONFLICT (conversation_id) DO UPDATE SET lock = excluded.lock, stale_at = excluded.stale_at",
                (conversation_id, lock.dumps(), time.time() + self.lease_seconds * 2),
            )

    def _transact(self, conversation_id: str, change: Change) -> Any:
        with self._mutex:
            self._conn.execute("BEGIN IMMEDIATE")  # the write lock first: nobody changes it meanwhile
            try:
                lock, result = change(self._read(conversation_id))
                self._write(lock, conversation_id)
                self._conn.execute("COMMIT")
                return result
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def _issue(self, conversation_id: str) -> Tuple[int, TicketLock, Optional[str]]:
        """When nobody holds the conversation's lock (no row, or a stale one), the new lock with
        ticket 0 in one statement; else the transaction of the base class."""
        lock = self.create_lock(conversation_id)
        ticket = lock.issue_ticket(self.lease_seconds)
        written, now = lock.dumps(), time.time()
        try:
            with self._mutex:
                inserted = self._conn.execute(
                    "INSERT INTO conversation_locks (conversation_id, lock, stale_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (conversation_id) DO UPDATE SET lock = excluded.lock, stale_at = excluded.stale_at "
                    "WHERE conversation_locks.stale_at < ?",
                    (conversation_id, written, now + self.lease_seconds * 2, now),
                ).rowcount
        except self.store_errors as exc:
            raise LockError(f"Error while acquiring lock: {type(exc).__name__}") from exc
        return (ticket, lock, written) if inserted == 1 else super()._issue(conversation_id)

    def _release(self, conversation_id: str, ticket_number: int, written: Optional[str]) -> None:
        """When the lock is still as ``_issue`` wrote it (the one ticket, not renewed since), its
        row goes in one statement; else the transaction of the base class."""
        if written is not None:
            with self._mutex:
                deleted = self._conn.execute(
                    "DELETE FROM conversation_locks WHERE conversation_id = ? AND lock = ?", (conversation_id, written)
                ).rowcount
            if deleted == 1:
                return
        super()._release(conversation_id, ticket_number, written)

    def get_lock(self, conversation_id: str) -> Optional[TicketLock]:
        with self._mutex:
            return self._read(conversation_id)

    def delete_lock(self, conversation_id: str) -> None:
        with self._mutex:
            self._write(None, conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        with self._mutex:
            self._write(lock, lock.conversation_id)
