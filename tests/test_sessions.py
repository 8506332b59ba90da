"""The session stores (one contract for every store) and the service on top of them: concurrency, conflicts
between processes, failing turns, redaction, and a server killed mid-turn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from assistant.sessions import MemoryStore, SessionConflict, SessionRecord, SQLiteStore, redact
from tests.assistant_fixtures import small_assistant

ROOT = Path(__file__).resolve().parents[1]


class StoreContract:
    """What every session store does; a test class per store supplies ``make``."""

    def make(self, folder: Path):
        raise NotImplementedError

    def test_a_saved_session_loads_back_with_its_version(self, tmp_path) -> None:
        store = self.make(tmp_path)
        assert store.load("a") is None
        first = store.save(SessionRecord("a", {"turn": 1}, (("shopper", "hi"),)), expected_version=0)
        assert first.version == 1
        loaded = store.load("a")
        assert (loaded.state, loaded.transcript, loaded.version) == ({"turn": 1}, (("shopper", "hi"),), 1)
        second = store.save(SessionRecord("a", {"turn": 2}), expected_version=1)
        assert second.version == 2 and store.load("a").state == {"turn": 2}

    def test_a_stale_save_is_refused_and_changes_nothing(self, tmp_path) -> None:
        store = self.make(tmp_path)
        store.save(SessionRecord("a", {"turn": 1}), expected_version=0)
        with pytest.raises(SessionConflict):
            store.save(SessionRecord("a", {"turn": 9}), expected_version=0)
        store.save(SessionRecord("a", {"turn": 2}), expected_version=1)
        with pytest.raises(SessionConflict):
            store.save(SessionRecord("a", {"turn": 9}), expected_version=1)
        assert store.load("a").state == {"turn": 2}

    def test_sessions_are_listed_latest_first_and_old_ones_expire(self, tmp_path) -> None:
        store = self.make(tmp_path)
        store.save(SessionRecord("old", {}), 0)
        time.sleep(0.02)
        cut = time.time()
        time.sleep(0.02)
        store.save(SessionRecord("new", {}), 0)
        assert [sid for sid, _ in store.sessions()] == ["new", "old"]
        assert [sid for sid, _ in store.sessions(since=cut)] == ["new"]
        assert store.expire(older_than=cut) == 1
        assert store.load("old") is None and store.load("new") is not None

    def test_sessions_never_see_each_others_data(self, tmp_path) -> None:
        store = self.make(tmp_path)
        store.save(SessionRecord("a", {"who": "a"}), 0)
        store.save(SessionRecord("b", {"who": "b"}), 0)
        assert store.load("a").state == {"who": "a"} and store.load("b").state == {"who": "b"}

    def test_a_key_is_claimed_once_until_it_expires(self, tmp_path) -> None:
        store = self.make(tmp_path)
        assert store.claim("sig-1", until=110.0, now=100.0) is True
        assert store.claim("sig-1", until=120.0, now=105.0) is False  # a replay within the window
        assert store.claim("sig-2", until=110.0, now=105.0) is True
        assert store.claim("sig-1", until=130.0, now=111.0) is True  # expired: a new claim
        assert store.claim("sig-1", until=140.0, now=112.0) is False
        assert store.load("sig-1") is None  # claims are not sessions


class TestMemoryStore(StoreContract):
    def make(self, folder: Path):
        return MemoryStore()


class TestSQLiteStore(StoreContract):
    def make(self, folder: Path):
        return SQLiteStore(folder / "sessions.sqlite3")

    def test_two_processes_sharing_the_file_see_each_others_saves_and_conflicts(self, tmp_path) -> None:
        one, two = SQLiteStore(tmp_path / "s.sqlite3"), SQLiteStore(tmp_path / "s.sqlite3")
        one.save(SessionRecord("a", {"turn": 1}), 0)
        assert two.load("a").state == {"turn": 1}
        two.save(SessionRecord("a", {"turn": 2}), 1)
        with pytest.raises(SessionConflict):
            one.save(SessionRecord("a", {"turn": 3}), 1)
        assert one.load("a").state == {"turn": 2}


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_url):
        import psycopg

        self.url = postgres_url
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute("DROP TABLE IF EXISTS concierge_sessions")

    def make(self, folder: Path):
        from assistant.sessions import PostgresStore

        return PostgresStore(self.url)

    def test_two_server_processes_share_sessions_and_see_conflicts(self, tmp_path) -> None:
        from assistant.sessions import PostgresStore

        one, two = PostgresStore(self.url), PostgresStore(self.url)
        one.save(SessionRecord("a", {"turn": 1}), 0)
        two.save(SessionRecord("a", {"turn": 2}), 1)
        with pytest.raises(SessionConflict):
            one.save(SessionRecord("a", {"turn": 3}), 1)
        service = small_assistant(tmp_path, store=one).service
        other = small_assistant(tmp_path / "other", store=two).service
        service.send("shared", "ink")
        reply = other.send("shared", "hp")
        assert [card.item_id for card in reply.cards] == ["ink-hp", "ink-hp-color"]
        assert service.view("shared").version == 2


def test_emails_and_phone_numbers_are_redacted_but_model_codes_kept() -> None:
    assert redact("ann.lee+shop@example.co.uk wants HP 61XL") == "[email] wants HP 61XL"
    assert redact("call 555-123-4567 or +44 20 7946 0958") == "call [phone] or [phone]"
    assert redact("a 12 pack of CN684WN#140, 500 sheets") == "a 12 pack of CN684WN#140, 500 sheets"


def test_the_stored_transcript_is_redacted(tmp_path) -> None:
    service = small_assistant(tmp_path, store=SQLiteStore(tmp_path / "s.sqlite3")).service
    service.send("s", "ink please, mail me at ann@example.com")
    assert ("shopper", "ink please, mail me at [email]") in service.transcript("s")
    assert "ann@example.com" not in (tmp_path / "s.sqlite3").read_bytes().decode("latin-1")
    # The assistant's own text (catalog facts) is kept as the shopper saw it: a model number is no phone number.
    record = (
        SessionRecord("r", {})
        .said("assistant", 'Noted: you like "Laminator (5721401)".')
        .said("agent", "555-123-4567")
    )
    assert record.transcript == (
        ("assistant", 'Noted: you like "Laminator (5721401)".'),
        ("agent", "[phone]"),
    )


def test_twenty_shoppers_at_once_keep_their_own_conversations(tmp_path) -> None:
    service = small_assistant(tmp_path, store=SQLiteStore(tmp_path / "s.sqlite3")).service
    needs = ["ink", "pens", "paper", "phones"]
    errors: list[BaseException] = []

    def shopper(n: int) -> None:
        try:
            need = needs[n % len(needs)]
            service.send(f"s{n}", need)
            reply = service.send(f"s{n}", "show me products")
            assert reply.cards, (n, reply.text)
            category = {"ink": "Ink", "pens": "Pens", "paper": "Paper", "phones": "Phones"}[need]
            assert {card.category for card in reply.cards} == {category}, n
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=shopper, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert all(service.view(f"s{n}").conversation.turn == 2 for n in range(20))


def test_messages_sent_at_once_to_one_session_are_each_applied_once(tmp_path) -> None:
    service = small_assistant(tmp_path, store=SQLiteStore(tmp_path / "s.sqlite3")).service
    threads = [threading.Thread(target=service.send, args=("same", "ink")) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    view = service.view("same")
    assert view.conversation.turn == 8
    assert len(view.transcript) == 8 * 2  # each message and its reply


def test_a_failing_turn_changes_nothing_stored_and_says_so(tmp_path, monkeypatch) -> None:
    service = small_assistant(tmp_path).service
    service.send("s", "ink")
    before = service.view("s")

    def broken(*args, **kwargs):
        raise RuntimeError("ranking server down")

    monkeypatch.setattr(service.engine, "respond", broken)
    reply = service.send("s", "hp")
    assert reply.text.startswith("Sorry, something went wrong on my side.")
    after = service.view("s")
    assert (after.version, after.conversation, after.transcript) == (
        before.version,
        before.conversation,
        before.transcript,
    )


def test_a_bad_session_id_is_refused(tmp_path) -> None:
    service = small_assistant(tmp_path).service
    for bad in ("", "   ", None, 7, "x" * 201):
        with pytest.raises(ValueError, match="session id"):
            service.send(bad, "hi")


def test_sessions_survive_a_restart_and_a_kill_mid_turn(tmp_path) -> None:
    """A process turning one session is killed with SIGKILL while it writes, again and again; the file always
    holds a whole session, which a new process continues."""
    database = tmp_path / "s.sqlite3"
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from assistant.sessions import SQLiteStore
        from tests.assistant_fixtures import small_assistant
        service = small_assistant(Path({str(tmp_path)!r}), store=SQLiteStore(Path({str(database)!r}))).service
        print("ready", flush=True)
        while True:
            service.send("s", "ink")
            service.send("s", "start over")
        """
    )
    for _ in range(3):
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.4)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    store = SQLiteStore(database)
    record = store.load("s")
    assert record is not None and record.version >= 2
    service = small_assistant(tmp_path, store=store).service
    reply = service.send("s", "pens")
    assert reply.text and service.view("s").version == record.version + 1


def test_the_service_expires_sessions_older_than_their_time_to_live(tmp_path) -> None:
    service = small_assistant(
        tmp_path, store=SQLiteStore(tmp_path / "s.sqlite3"), session_ttl_hours=1.0
    ).service
    service.send("old", "ink")
    assert service.expire(now=time.time() + 1800) == 0
    assert service.expire(now=time.time() + 3700) == 1
    assert service.view("old") is None
