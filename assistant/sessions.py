"""Where conversations are kept between turns: one store interface, in memory or in SQLite.

A stored session is a :class:`SessionRecord`: the engine's state as plain data, the transcript (emails and phone
numbers redacted before anything is written), the history of agent actions, and a version number that every
save increments. Saving is optimistic: :meth:`SessionStore.save` writes only when the stored version is still
the one the turn started from, and raises :class:`SessionConflict` otherwise, so two processes that turn the
same session at once never overwrite each other (the service retries the later turn on the fresh state). Each
save is one transaction: a crash mid-turn leaves the previous state whole.

- :class:`MemoryStore`: one process, nothing written (the terminal chat, tests).
- :class:`SQLiteStore`: a file (``<artifacts>/sessions.sqlite3`` by default) in WAL mode, shared by the processes
  of one machine.
- :class:`PostgresStore`: a PostgreSQL database (``conversation.session_store = "postgresql://..."``), shared by
  server processes on several machines.

Sessions untouched for ``session_ttl_hours`` are deleted by :meth:`SessionStore.expire`. A store also remembers keys
for a while, once each, for every process that shares it (:meth:`SessionStore.claim`: a signed webhook is accepted
once, whichever server process receives it).

Example:
    >>> store = MemoryStore()
    >>> record = store.save(SessionRecord("web-1", {"turn": 0}), expected_version=0)
    >>> store.load("web-1").version, store.load("missing") is None
    (1, True)
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven or more digits in a run that may hold spaces, dots, dashes and brackets: a phone number, not a model code.
_PHONE = re.compile(r"(?<![\w])\+?\(?\d(?:[\s().-]*\d){6,}(?![\w])")


def redact(text: str) -> str:
    """``text`` with email addresses and phone numbers replaced.

    Example:
        >>> redact("mail me at ann@example.com or call +1 (555) 123-4567 about the HP 61XL")
        'mail me at [email] or call [phone] about the HP 61XL'
    """
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


class SessionConflict(RuntimeError):
    """The session changed since it was loaded (another process turned it); load it again and retry."""


@dataclass(frozen=True)
class SessionRecord:
    """One stored session.

    Attributes:
        session_id: The opaque id.
        state: The engine's state (:meth:`assistant.engine.Conversation.to_dict`).
        transcript: ``(role, text)`` pairs, oldest first; role is ``shopper``, ``assistant`` or ``agent``.
        events: Agent actions and hand-overs, as ``{"at": ..., "what": ...}`` dicts.
        version: Saves so far (0 before the first).
        updated: When it was last saved (seconds since the epoch).
    """

    session_id: str
    state: dict[str, object]
    transcript: tuple[tuple[str, str], ...] = ()
    events: tuple[dict[str, object], ...] = ()
    version: int = 0
    updated: float = field(default=0.0, compare=False)

    def said(self, role: str, text: str) -> SessionRecord:
        """The record with one more transcript line. What people write (shoppers, agents) is redacted; the
        assistant's own text is made of catalog facts, whose long model numbers ("(5721401)") would read as
        phone numbers."""
        return replace(
            self, transcript=(*self.transcript, (role, text if role == "assistant" else redact(text)))
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "state": self.state,
                "transcript": [list(t) for t in self.transcript],
                "events": list(self.events),
            }
        )

    @classmethod
    def from_json(cls, session_id: str, text: str, version: int, updated: float) -> SessionRecord:
        data = json.loads(text)
        return cls(
            session_id,
            data["state"],
            tuple((str(r), str(t)) for r, t in data["transcript"]),
            tuple(data.get("events", ())),
            version,
            updated,
        )


class SessionStore(ABC):
    """Loads and saves sessions (see the module docstring)."""

    @abstractmethod
    def load(self, session_id: str) -> SessionRecord | None:
        """The stored session, ``None`` when there is none."""

    @abstractmethod
    def save(self, record: SessionRecord, expected_version: int) -> SessionRecord:
        """Store ``record`` if the stored version is ``expected_version`` (0: none stored); the stored record,
        its version one more.

        Raises:
            SessionConflict: The stored version is another.
        """

    @abstractmethod
    def sessions(self, since: float = 0.0) -> list[tuple[str, float]]:
        """``(session id, updated)`` of the sessions saved at or after ``since``, latest first."""

    @abstractmethod
    def expire(self, older_than: float) -> int:
        """Delete the sessions last saved before ``older_than``; how many."""

    @abstractmethod
    def claim(self, key: str, until: float, now: float | None = None) -> bool:
        """Remember ``key`` until ``until`` (seconds since the epoch); ``False`` when it is remembered already and
        not yet expired. Atomic, and shared by every process of the store: what makes a signed webhook usable once
        whichever server process receives it."""


class MemoryStore(SessionStore):
    """Sessions in this process's memory."""

    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}
        self._claims: dict[str, float] = {}
        self._lock = threading.Lock()

    def load(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            return self._records.get(session_id)

    def save(self, record: SessionRecord, expected_version: int) -> SessionRecord:
        with self._lock:
            current = self._records.get(record.session_id)
            if (current.version if current else 0) != expected_version:
                raise SessionConflict(f"session {record.session_id!r} changed since it was loaded")
            stored = replace(record, version=expected_version + 1, updated=time.time())
            self._records[record.session_id] = stored
            return stored

    def sessions(self, since: float = 0.0) -> list[tuple[str, float]]:
        with self._lock:
            found = [(r.session_id, r.updated) for r in self._records.values() if r.updated >= since]
        return sorted(found, key=lambda pair: -pair[1])

    def expire(self, older_than: float) -> int:
        with self._lock:
            old = [key for key, r in self._records.items() if r.updated < older_than]
            for key in old:
                del self._records[key]
        return len(old)

    def claim(self, key: str, until: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self._lock:
            if self._claims.get(key, -1.0) >= now:
                return False
            self._claims = {k: end for k, end in self._claims.items() if end >= now}
            self._claims[key] = until
            return True


class SQLiteStore(SessionStore):
    """Sessions in a SQLite file in WAL mode (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connection() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL, "
                "version INTEGER NOT NULL, updated REAL NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS sessions_updated ON sessions (updated)")
            db.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, until REAL NOT NULL)")

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def load(self, session_id: str) -> SessionRecord | None:
        row = (
            self._connection()
            .execute("SELECT data, version, updated FROM sessions WHERE id = ?", (session_id,))
            .fetchone()
        )
        return None if row is None else SessionRecord.from_json(session_id, row[0], row[1], row[2])

    def save(self, record: SessionRecord, expected_version: int) -> SessionRecord:
        db = self._connection()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            if expected_version == 0:
                changed = db.execute(
                    "INSERT OR IGNORE INTO sessions (id, data, version, updated) VALUES (?, ?, 1, ?)",
                    (record.session_id, record.to_json(), now),
                ).rowcount
            else:
                changed = db.execute(
                    "UPDATE sessions SET data = ?, version = version + 1, updated = ? WHERE id = ? AND version = ?",
                    (record.to_json(), now, record.session_id, expected_version),
                ).rowcount
            if changed != 1:
                raise SessionConflict(f"session {record.session_id!r} changed since it was loaded")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return replace(record, version=expected_version + 1, updated=now)

    def sessions(self, since: float = 0.0) -> list[tuple[str, float]]:
        rows = self._connection().execute(
            "SELECT id, updated FROM sessions WHERE updated >= ? ORDER BY updated DESC", (since,)
        )
        return [(row[0], row[1]) for row in rows]

    def expire(self, older_than: float) -> int:
        return self._connection().execute("DELETE FROM sessions WHERE updated < ?", (older_than,)).rowcount

    def claim(self, key: str, until: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM claims WHERE until < ?", (now,))
            taken = db.execute(
                "INSERT OR IGNORE INTO claims (key, until) VALUES (?, ?)", (key, until)
            ).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return taken == 1


class PostgresStore(SessionStore):
    """Sessions in PostgreSQL (one connection per thread; each save one transaction)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self._psycopg = psycopg
        self._local = threading.local()
        with self._connection().transaction():
            # CREATE ... IF NOT EXISTS is not safe when several processes start at once on an empty database (the
            # losers of the race fail on PostgreSQL's catalog): one at a time, under a lock held to the commit.
            self._connection().execute("SELECT pg_advisory_xact_lock(hashtext('concierge_sessions'))")
            self._connection().execute(
                "CREATE TABLE IF NOT EXISTS concierge_sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL, "
                "version INTEGER NOT NULL, updated DOUBLE PRECISION NOT NULL)"
            )
            self._connection().execute(
                "CREATE INDEX IF NOT EXISTS concierge_sessions_updated ON concierge_sessions (updated)"
            )
            self._connection().execute(
                "CREATE TABLE IF NOT EXISTS concierge_claims (key TEXT PRIMARY KEY, until DOUBLE PRECISION NOT NULL)"
            )

    def _connection(self):
        db = getattr(self._local, "db", None)
        if db is None or db.closed:
            db = self._psycopg.connect(self.url, autocommit=True)
            self._local.db = db
        return db

    def load(self, session_id: str) -> SessionRecord | None:
        row = (
            self._connection()
            .execute("SELECT data, version, updated FROM concierge_sessions WHERE id = %s", (session_id,))
            .fetchone()
        )
        return None if row is None else SessionRecord.from_json(session_id, row[0], row[1], row[2])

    def save(self, record: SessionRecord, expected_version: int) -> SessionRecord:
        db = self._connection()
        now = time.time()
        with db.transaction():
            if expected_version == 0:
                changed = db.execute(
                    "INSERT INTO concierge_sessions (id, data, version, updated) VALUES (%s, %s, 1, %s) "
                    "ON CONFLICT (id) DO NOTHING",
                    (record.session_id, record.to_json(), now),
                ).rowcount
            else:
                changed = db.execute(
                    "UPDATE concierge_sessions SET data = %s, version = version + 1, updated = %s "
                    "WHERE id = %s AND version = %s",
                    (record.to_json(), now, record.session_id, expected_version),
                ).rowcount
            if changed != 1:
                raise SessionConflict(f"session {record.session_id!r} changed since it was loaded")
        return replace(record, version=expected_version + 1, updated=now)

    def sessions(self, since: float = 0.0) -> list[tuple[str, float]]:
        rows = self._connection().execute(
            "SELECT id, updated FROM concierge_sessions WHERE updated >= %s ORDER BY updated DESC", (since,)
        )
        return [(row[0], row[1]) for row in rows]

    def expire(self, older_than: float) -> int:
        return (
            self._connection()
            .execute("DELETE FROM concierge_sessions WHERE updated < %s", (older_than,))
            .rowcount
        )

    def claim(self, key: str, until: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        db = self._connection()
        with db.transaction():
            db.execute("DELETE FROM concierge_claims WHERE until < %s", (now,))
            taken = db.execute(
                "INSERT INTO concierge_claims (key, until) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                (key, until),
            ).rowcount
        return taken == 1
