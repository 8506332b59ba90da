"""The `concierge` command line, run as a real process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data.settings import SAMPLE_DIR

HEAVY = ("torch", "gradio", "chromadb", "sentence_transformers", "transformers")


def concierge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize("args", [["--help"], ["inventory"], ["inventory", "--json"]])
def test_light_commands_import_no_heavy_library(args):
    probe = (
        "import sys\nfrom ui.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in done.stderr


def test_inventory_json_on_the_sample():
    done = concierge("inventory", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["items"] == 2417
    assert report["users"] == 4905
    assert report["interactions"] == 53201
    assert report["cold_items"] == 0
    assert round(report["missing"]["description"], 3) == 0.264


def test_inventory_of_a_catalog_alone(tmp_path: Path):
    catalog = tmp_path / "items.csv"
    catalog.write_text("item_id,title,brand\n1,Blue Pen,Pilot\n2,Red Pen,\n", encoding="utf-8")
    done = concierge("inventory", "--catalog", str(catalog))
    assert done.returncode == 0, done.stderr
    assert "Items                 2" in done.stdout
    assert "Interactions" not in done.stdout


def test_strict_stops_with_status_2_and_lenient_reports(tmp_path: Path):
    catalog = tmp_path / "items.jsonl"
    catalog.write_text('{"item_id": "1", "title": "Pen"}\n{"item_id": "2", "title": ""}\n', encoding="utf-8")
    strict = concierge("inventory", "--catalog", str(catalog), "--strict")
    assert strict.returncode == 2
    assert strict.stderr.startswith(f"error: {catalog}:2: field 'title'")
    lenient = concierge("inventory", "--catalog", str(catalog))
    assert lenient.returncode == 0
    assert "Items                 1" in lenient.stdout
    assert f"{catalog}:2: field 'title'" in lenient.stderr


def test_eval_needs_interactions_for_another_catalog(tmp_path: Path):
    catalog = tmp_path / "items.jsonl"
    catalog.write_text('{"item_id": "1", "title": "Pen"}\n', encoding="utf-8")
    done = concierge("eval", "--catalog", str(catalog))
    assert done.returncode == 2
    assert "'eval' needs --interactions" in done.stderr


def test_convert_reproduces_the_bundled_sample(tmp_path: Path):
    lcrec = SAMPLE_DIR / "lcrec"
    done = concierge(
        "convert", "lcrec", str(lcrec / "Office.item.json"), str(lcrec / "Office.inter.json"), str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert "Wrote 2,417 items and 53,201 interactions" in done.stdout
    assert done.stderr.count("skipped: ") == 60
    for name in ("items.jsonl", "interactions.jsonl"):
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes()


def test_eval_json_on_the_sample():
    done = concierge(
        "eval",
        "--answers",
        "0,3",
        "--systems",
        "popularity,faceted_popularity",
        "--episodes",
        "100",
        "--order",
        "facets-first",
        "--shopper",
        "specific",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["vocabulary"], report["answer_order"], report["feedback"]) == (
        "specific",
        "facets-first",
        0,
    )
    by_key = {(row["answers"], row["system"]): row for row in report["results"]}
    assert set(by_key) == {
        (0, "popularity"),
        (0, "faceted_popularity"),
        (3, "popularity"),
        (3, "faceted_popularity"),
    }
    hit_rate = {key: row["metrics"]["hit_rate"]["value"] for key, row in by_key.items()}
    assert hit_rate[3, "faceted_popularity"] > hit_rate[3, "popularity"] + 0.3
    assert report["sizes"]["episodes"] == 100


def test_eval_of_a_reranker_without_a_trained_model_says_which_command_makes_it(tmp_path):
    done = concierge("eval", "--systems", "cross_encoder", "--artifacts", str(tmp_path), "--episodes", "3")
    assert done.returncode == 1
    assert "concierge train-reranker" in done.stderr and str(tmp_path) in done.stderr


def test_bad_answers_option():
    done = concierge("eval", "--answers", "x")
    assert done.returncode == 2
    assert "--answers expects K, K-K or K,K,..." in done.stderr


def test_demo_check_says_what_is_not_built_yet(tmp_path):
    done = concierge("demo", "--check", "--artifacts", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "catalog: 2,417 items; interactions: 53,201" in done.stdout
    assert "vector and lexical indexes: not built yet (concierge build)" in done.stdout
    assert "cross-encoder reranker and MF prior: not built yet (concierge train-reranker)" in done.stdout


def test_hash_password_prints_a_hash_of_the_password_on_stdin_even_beside_a_broken_settings_file(tmp_path):
    from ui.auth import verify_password

    # The hash a broken settings file needs is made without reading it.
    (tmp_path / "concierge.toml").write_text(
        '[server]\nconsole_password_hash = "hunter2"\n', encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "ui.cli", "hash-password"],
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    hashed = done.stdout.strip()
    assert hashed.startswith("scrypt$16384$8$1$") and "\n" not in hashed
    assert verify_password("correct horse battery", hashed)
    assert not verify_password("correct horse battery\n", hashed)
    assert "console_password_hash" in done.stderr


def test_hash_password_refuses_a_short_password():
    done = subprocess.run(
        [sys.executable, "-m", "ui.cli", "hash-password"],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "error: a console password needs at least 8 characters" in done.stderr


def test_the_demo_makes_a_console_login_for_its_run_unless_one_is_configured():
    from dataclasses import replace

    from data.settings import Settings
    from ui.auth import hash_password, verify_password
    from ui.demo import console_login

    settings, line = console_login(Settings())
    password = line.split("password ")[1].split(" ")[0]
    assert settings.server.console_user == "agent"
    assert verify_password(password, settings.server.console_password_hash)
    assert line.startswith("==> The agent console: http://127.0.0.1:7860/console/ user agent, password ")
    assert console_login(Settings())[1] != line  # a new password each run
    hashed = hash_password("correct horse battery", n=2**10)
    configured = replace(
        Settings(), server=replace(Settings().server, console_user="maria", console_password_hash=hashed)
    )
    assert console_login(configured) == (
        configured,
        "==> The agent console: http://127.0.0.1:7860/console/ (log in as maria)",
    )
