"""Where the vector index lives: an embedded Chroma directory or a Chroma server, opened as clients and guarded for
writes.

By default an embedded Chroma store under ``<artifacts>/chroma``; with ``retrieval.chroma_host`` set, a
Chroma server (``chroma run``), through the same class and code. Chroma's own tracker reports that several
processes writing one store directory can corrupt it, so writes to an embedded store take an exclusive lock file
in that directory and a second writer is refused at once; any number of processes may read (a process that
keeps the index open while another rebuilds it should reopen it). A server serialises writes itself.

Every failure of the store reaches the caller as a :class:`retrieval.errors.RetrievalError` whose message says
what to do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from data.settings import Settings
from retrieval.errors import (
    REBUILD_COMMAND,
    IndexCorruptError,
    IndexLockedError,
    IndexMissingError,
    IndexUnavailableError,
)

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

LOCK_FILE = "concierge-write.lock"
# How often a writer that waits for the lock tries again.
LOCK_POLL_SECONDS = 0.2
# What Chroma keeps in its directory; a rebuild of a damaged store removes exactly these.
_CHROMA_FILES = re.compile(r"chroma\.sqlite3(-wal|-shm|-journal)?|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")


class ChromaStore:
    """Where the index lives: an embedded directory or a server; makes clients and guards writes."""

    def __init__(self, settings: Settings) -> None:
        retrieval = settings.retrieval
        self.host = retrieval.chroma_host
        self.port = retrieval.chroma_port
        # Absolute, because Chroma shares one in-process store per path string.
        self.path: Path | None = None if self.host else (Path(settings.paths.artifacts) / "chroma").resolve()
        self.location = (
            f"the Chroma server at http://{self.host}:{self.port}" if self.host else f"{self.path}"
        )

    def client(self, *, create: bool) -> ClientAPI:
        # Imported here: chromadb takes a second to import, which commands without an index should not pay.
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if self.path is None:
            try:
                return chromadb.HttpClient(host=self.host, port=self.port, settings=chroma_settings)
            except ValueError as error:
                raise IndexUnavailableError(
                    f"Cannot reach {self.location} ({error}). Start it (`chroma run --path <folder> "
                    f"--host {self.host} --port {self.port}`), or leave retrieval.chroma_host empty to use the "
                    "embedded index."
                ) from None
        database = self.path / "chroma.sqlite3"
        if database.is_file():
            self._check_database(database)
        elif not create:
            raise IndexMissingError(f"No retrieval index at {self.path}; build it: run `concierge index`.")
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            return chromadb.PersistentClient(path=str(self.path), settings=chroma_settings)
        except Exception as error:
            _forget_failed_store(self.path)
            raise self._corrupt(error) from error

    def _check_database(self, database: Path) -> None:
        """Fail on a damaged database file before Chroma opens it (see :func:`_forget_failed_store` for why)."""
        try:
            with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as connection:
                # quick_check reads every page once: 25 ms for the 2,417-item sample's 4.6 MB.
                verdict = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.Error as error:
            raise self._corrupt(error) from error
        if verdict != "ok":
            raise self._corrupt(sqlite3.DatabaseError(verdict))

    def _corrupt(self, error: BaseException) -> IndexCorruptError:
        return IndexCorruptError(
            f"The retrieval index at {self.path} cannot be used ({type(error).__name__}: {error}). If a "
            f"program other than Concierge has it open, stop that program; otherwise rebuild it: run "
            f"`{REBUILD_COMMAND}`."
        )

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn Chroma's errors into a :class:`RetrievalError` that says what to do."""
        import httpx
        from chromadb.errors import ChromaError

        try:
            yield
        except (ChromaError, httpx.HTTPError) as error:
            if self.path is None:
                raise IndexUnavailableError(
                    f"{self.location} failed ({type(error).__name__}: {error}). Check that it is running and "
                    f"reachable; if it reports damaged data, rebuild the index: run `{REBUILD_COMMAND}`."
                ) from error
            raise self._corrupt(error) from error

    @contextlib.contextmanager
    def write_lock(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the one-writer lock of an embedded store for the duration; fail if it is taken, at once or after
        waiting ``wait`` seconds for its holder to finish.

        The kernel drops an ``flock`` when its holder exits, however it exits, so a killed build never leaves
        a stale lock behind.
        """
        if self.path is None:
            yield
            return
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / LOCK_FILE
        deadline = time.monotonic() + wait
        with lock_path.open("a+", encoding="utf-8") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() < deadline:
                        time.sleep(LOCK_POLL_SECONDS)
                        continue
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    waited = f" after waiting {wait:g} s" if wait else ""
                    raise IndexLockedError(
                        f"The retrieval index at {self.path} is being written by another process (pid {holder}, "
                        f"lock file {lock_path}){waited}. Wait for it to finish, or stop it, then try again."
                    ) from None
            try:
                handle.truncate(0)
                handle.write(str(os.getpid()))
                handle.flush()
                yield
            finally:
                handle.truncate(0)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def remove_files(self) -> None:
        """Delete Chroma's files from the embedded store's directory (the lock file stays)."""
        assert self.path is not None
        for entry in self.path.iterdir():
            if _CHROMA_FILES.fullmatch(entry.name):
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


def _forget_failed_store(path: Path) -> None:
    """Drop the Chroma system of a store that failed to open, unless a live client still uses it.

    Chroma 1.5 caches a store's system by path before starting it and keeps it when the start fails, so every
    later client for that path in this process would get the broken one: a store repaired by
    ``concierge index --rebuild`` could not be opened again without restarting the process.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    identifier = str(path)
    if SharedSystemClient._identifier_to_refcount.get(identifier, 0) <= 0:
        SharedSystemClient._identifier_to_system.pop(identifier, None)
