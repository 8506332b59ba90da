"""The cross-encoder under ONNX Runtime with int8 weights: the reranker's fastest CPU backend (``onnx-int8``).

A trained model's folder gets one more file, :data:`ONNX_FILE`: the fine-tuned BERT sequence classifier exported
with ``torch.onnx.export`` (the TorchScript exporter, opset 17, batch and sequence axes dynamic, attention in its
eager form), then its MatMul weights quantised to int8 per output channel by
``onnxruntime.quantization.quantize_dynamic`` (activations are quantised per call). ``concierge train-reranker``
writes it after training; :func:`open_onnx` writes it on first use when it is missing, was exported from other
weights (the file records the model id of the card it came from) or in another way (:data:`EXPORT_FORMAT`). The
file is written beside its final name and renamed into place, so a reader never sees half a file and two
processes exporting at once leave one whole file.

ONNX Runtime runs on as many threads as torch is set to (``torch.get_num_threads()``); a session is safe to share
across threads. Pairs are tokenised exactly as sentence-transformers' ``CrossEncoder`` does (``longest_first``
truncation to the model's window, padded to the longest pair of a batch), so the scores differ from fp32 only by
quantisation (``python -m benchmarks.bench_reranker`` measures by how much). Activations are quantised per batch,
so a pair's score moves a little with its batch mates; its rank hardly (the tests check both).

Example:
    >>> from ranking.cross_encoder import load_scorer
    >>> scorer = load_scorer(folder, backend="onnx-int8")  # doctest: +SKIP
    >>> scorer.score("black ink", ["HP 61 Black Ink", "Stapler"]).shape  # doctest: +SKIP
    (2,)
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

logger = logging.getLogger(__name__)

ONNX_FILE = "model-int8.onnx"
OPSET = 17
# The metadata key naming the trained model (its card id) an ONNX file was exported from.
MODEL_ID_KEY = "concierge_model_id"
# How the graph is made; a file of another format is exported again. 2: attention exported in its eager form (plain
# matrix products and softmax) instead of torch's scaled-dot-product attention, whose exported mask arithmetic (Where,
# IsNaN) took about a tenth of a call: the same function, about 8% faster (docs/benchmarks.md, "Scoring speed").
EXPORT_FORMAT = "2"
EXPORT_FORMAT_KEY = "concierge_export_format"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxCrossEncoder:
    """A fine-tuned cross-encoder run by ONNX Runtime: one logit per (query, text) pair.

    Args:
        path: The int8 ONNX file (see :func:`export_onnx`).
        tokenizer: The model's tokenizer (a transformers tokenizer).
        max_length: Word pieces read of a pair.
        threads: Intra-op threads of the ONNX Runtime session.
    """

    def __init__(self, path: Path, tokenizer, max_length: int, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        # Threads that wait by sleeping, not spinning: with many shoppers' turns at once, spinning threads take the
        # cores from the turns that have work (measured with benchmarks/bench_turns.py: docs/benchmarks.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = [node.name for node in self._session.get_inputs()]
        self._tokenizer = tokenizer
        self.max_seq_length = max_length

    def logits(self, pairs: Sequence[tuple[str, str]], batch_size: int) -> np.ndarray:
        """One float32 logit per pair, in order."""
        out = np.empty(len(pairs), dtype=np.float32)
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            encoded = self._tokenizer(
                [query for query, _ in batch],
                [text for _, text in batch],
                padding=True,
                truncation="longest_first",
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feed = {name: np.asarray(encoded[name], dtype=np.int64) for name in self._inputs}
            (logits,) = self._session.run(["logits"], feed)
            out[start : start + len(batch)] = logits.reshape(len(batch), -1)[:, 0]
        return out


@contextlib.contextmanager
def _root_warnings_silenced() -> Iterator[None]:
    """Keep the quantiser's advice to pre-process the graph (logged on the root logger) out of the output."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def onnx_model_id(path: Path) -> str | None:
    """The model id an ONNX file was exported from; ``None`` when the file is missing, unreadable, or of another
    export format (:data:`EXPORT_FORMAT`)."""
    import onnx

    if not path.is_file():
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # a truncated file raises protobuf's DecodeError, which onnx does not wrap
        logger.warning("%s: unreadable ONNX file (%s); it will be exported again", path, error)
        return None
    props = {prop.key: prop.value for prop in model.metadata_props}
    return props.get(MODEL_ID_KEY) if props.get(EXPORT_FORMAT_KEY) == EXPORT_FORMAT else None


def export_onnx(model: CrossEncoder, folder: Path, model_id: str) -> Path:
    """Export ``model`` to ``folder / ONNX_FILE`` with int8 weights, recording ``model_id``; the file's path.

    Written under a temporary name in ``folder`` and renamed into place.
    """
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    network = model.model.eval().to("cpu")
    attention = network.config._attn_implementation
    sample = model.tokenizer(
        ["a query"], ["an item text"], padding=True, truncation="longest_first", return_tensors="pt"
    )
    inputs = tuple(sample[name] for name in _INPUTS)
    axes = {name: {0: "pairs", 1: "pieces"} for name in _INPUTS} | {"logits": {0: "pairs"}}
    with tempfile.TemporaryDirectory(dir=folder, prefix=".onnx-") as scratch:
        full = Path(scratch) / "model.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter warns about tracing BERT's mask arithmetic; the graph is checked by tests.
            warnings.simplefilter("ignore")
            network.set_attn_implementation("eager")
            try:
                torch.onnx.export(
                    network,
                    inputs,
                    str(full),
                    input_names=list(_INPUTS),
                    output_names=["logits"],
                    dynamic_axes=axes,
                    opset_version=OPSET,
                    dynamo=False,
                )
            finally:
                network.set_attn_implementation(attention)
        quantised = Path(scratch) / ONNX_FILE
        with warnings.catch_warnings(), _root_warnings_silenced():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(full), str(quantised), weight_type=QuantType.QInt8, per_channel=True)
        graph = onnx.load(str(quantised))
        onnx.helper.set_model_props(graph, {MODEL_ID_KEY: model_id, EXPORT_FORMAT_KEY: EXPORT_FORMAT})
        onnx.save(graph, str(quantised))
        target = folder / ONNX_FILE
        os.replace(quantised, target)
    return target


def open_onnx(model: CrossEncoder, folder: Path, model_id: str, max_length: int) -> OnnxCrossEncoder:
    """The folder's int8 ONNX model of ``model``, exported first when missing or exported from other weights."""
    import torch

    path = Path(folder) / ONNX_FILE
    if onnx_model_id(path) != model_id:
        logger.info("exporting the reranker %s to ONNX (int8) in %s", model_id, folder)
        export_onnx(model, folder, model_id)
    return OnnxCrossEncoder(path, model.tokenizer, max_length, torch.get_num_threads())
