"""`aiaas publish --tokenizer`'s smoke test: the model fed by the very tokenizer serving runs.

A short text and one past max_length in one batch (the model must run on the widest row the
tokenizer pads to), and the short text's answer the same alone as padded in that batch, as
serving pads a request: a model that does not ignore padding would answer a text by what else
its request holds. When it fails padded on the right (no padding in tokenizer.json) but answers
the same padded on the left, the refusal says so: a decoder classifier's tokenizer.json saved
without its left padding (transformers keeps `padding_side` in tokenizer_config.json).
A tokenizer.json with a fixed length pads both to it, so that check proves nothing there:
`masks_fixed_padding` runs the short text at its own width too, and only a model that answers
the same is served padded to a batch's longest row (a short text then costs its own width).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from functions.runtime.errors import BadRequest
from functions.runtime.hf_tokenizer import HfTokenizer

# A padded row's outputs may differ from the row's alone by this share of their size (int8
# variants scale activations per batch); more is a model that does not ignore padding.
PADDING_TOLERANCE = 0.05
# The names exporters give the mask: Hugging Face's first, then Google's BERT (tf2onnx, the
# ONNX model zoo's BERT-SQuAD) and a common variant.
MASK_NAMES = ("attention_mask", "input_mask", "mask")
MASKS = "(" + " / ".join(f"'{n}'" for n in MASK_NAMES) + ")"


def smoke_test(session: ort.InferenceSession, tokenizer: HfTokenizer, ids_input: str) -> None:
    """The model fed by serving's tokenizer, on a short text and one past max_length; and the
    short text's answer the same alone as padded in that batch, as serving pads a request."""
    try:
        moved = _moved(session, tokenizer, ids_input)
    except Exception as exc:  # onnxruntime raises untyped errors
        raise BadRequest(_run_failure(session, tokenizer, ids_input, exc)) from None
    if moved is not None:
        side = tokenizer.padding["direction"]
        other = "left" if side == "right" else "right"
        fits_other = _pads_on(session, tokenizer, ids_input, other)
        raise BadRequest(_padding_error(*moved, tokenizer, other if fits_other else None))


def masks_fixed_padding(
    session: ort.InferenceSession, fixed: HfTokenizer, longest: HfTokenizer, ids_input: str
) -> bool:
    """Whether a tokenizer.json's fixed length may give way to the batch's longest row: the
    model, fed as `longest` pads, passes the smoke test (a short text the same alone as beside
    one of max_length) and answers the short text alone the same at its own width as at the
    file's fixed width (the ids its users' own encode_batch sends). A model that reads every
    position (no mask) fails and keeps the fixed length, as it was trained."""
    try:
        if _moved(session, longest, ids_input) is not None:
            return False
        padded = session.run(None, fixed.feeds(["a"], ids_input))
        own = session.run(None, longest.feeds(["a"], ids_input))
    except Exception:  # onnxruntime raises untyped errors: the fixed length's own check says
        return False
    pairs = zip(padded, own, strict=True)
    return all(padding_change(np.asarray(p), np.asarray(o)) is None for p, o in pairs)


def _moved(
    session: ort.InferenceSession, tokenizer: HfTokenizer, ids_input: str
) -> tuple[str, float] | None:
    """The first output whose answer for a short text moved when a text past max_length pads
    it, and by how much; else None."""
    longest = " ".join(["a"] * (tokenizer.max_length * 2))
    batch = session.run(None, tokenizer.feeds(["a", longest], ids_input))
    alone = session.run(None, tokenizer.feeds(["a"], ids_input))
    names = [o.name for o in session.get_outputs()]
    for name, padded, own in zip(names, batch, alone, strict=True):
        change = padding_change(np.asarray(padded), np.asarray(own))
        if change is not None:
            return name, change
    return None


def _pads_on(
    session: ort.InferenceSession, tokenizer: HfTokenizer, ids_input: str, side: str
) -> bool:
    """Whether the model answers the short text the same when the batch is padded on `side`."""
    own = tokenizer.tokenizer
    own.enable_padding(**{**tokenizer.padding, "direction": side})
    try:
        return _moved(session, tokenizer, ids_input) is None
    except Exception:  # onnxruntime raises untyped errors: no hint then
        return False
    finally:
        own.enable_padding(**tokenizer.padding)


def _run_failure(
    session: ort.InferenceSession, tokenizer: HfTokenizer, ids_input: str, exc: Exception
) -> str:
    """Why the smoke test failed: past the positions (give --max-length), or on any length but
    the traced one (torch.onnx.export's tracer can bake the example's length into Reshapes)."""
    feeds = tokenizer.feeds(["a"], ids_input)
    try:
        session.run(None, feeds)
    except Exception as short:  # onnxruntime raises untyped errors
        return (
            f"the model fails on a text of {feeds[ids_input].shape[1]} tokens as well as on one "
            f"of {tokenizer.max_length}: {str(short)[:300]}; its graph seems to fix the sequence "
            "length it was exported with (torch.onnx.export's tracer keeps the example's length "
            "in some Reshapes, e.g. of nn.MultiheadAttention): export with dynamo=True, or run "
            "the file on another length to check"
        )
    if tokenizer.width > tokenizer.max_length:  # the file's multiple or fixed length pads past
        multiple = tokenizer.padding.get("pad_to_multiple_of")
        fits = tokenizer.max_length // multiple * multiple if multiple else 0
        length = f" (--max-length {fits}: padded to {fits} ids)" if fits else ""
        return (
            f"the model fails on a text of {tokenizer.max_length} tokens padded to "
            f"{tokenizer.width} ids, as tokenizer.json's padding ({describe_padding(tokenizer)}) pads "
            f"it: {str(exc)[:300]}; give a --max-length that padding keeps within the positions "
            f"the model reads{length}, or save the tokenizer with a padding that fits"
        )
    return (
        f"the model fails on a text of {tokenizer.max_length} tokens: {str(exc)[:300]}; give "
        "--max-length with the number of positions it reads"
    )


def padding_change(padded: np.ndarray, alone: np.ndarray) -> float | None:
    """How far the first row of a padded batch's float output is from the row alone, when more
    than quantization noise; else None. int8's activations are scaled per batch, padding
    included: ~1% on publish's own two texts, up to 18% of the logits' scale on real ones
    (publish --data measures and reports it: publish_evaluation.py `alone`)."""
    if padded.dtype.kind != "f" or padded.ndim == 0 or alone.shape[:1] != (1,):
        return None
    first, own = padded[:1].astype(np.float64), alone.astype(np.float64)
    if first.shape != own.shape:
        return None
    change = float(np.max(np.abs(first - own), initial=0.0))
    scale = max(1.0, float(np.max(np.abs(own), initial=0.0)))
    return change if change > PADDING_TOLERANCE * scale else None


def _padding_error(output: str, change: float, tokenizer: HfTokenizer, fits: str | None) -> str:
    """`fits`: the other side of padding, when the model's answer holds with it."""
    mask = tokenizer.inputs.mask
    if fits == "right":  # the mirror: a model of absolute positions, padded on the left
        return (
            f"the model's answer for a text changes when a longer text in the same request pads "
            f"it on the left, as this tokenizer.json pads ('{output}' moves by {change:.3g}), "
            "but not on the right: its tokens' positions count from the row's start, so left "
            "padding moves every one of them: save the tokenizer.json after "
            f"tokenizer.enable_padding(direction='right', pad_id={tokenizer.pad_id}, "
            "pad_token=...), as serving pads as that file says"
        )
    if fits == "left":
        return (
            f"the model's answer for a text changes when a longer text in the same request pads "
            f"it on the right ('{output}' moves by {change:.3g}) but not on the left: it was "
            "trained with left padding (a decoder pooling the last position), which this "
            "tokenizer.json does not say (transformers keeps padding_side in "
            "tokenizer_config.json): save it after tokenizer.enable_padding(direction='left', "
            f"pad_id={tokenizer.pad_id}, pad_token=...), as serving pads as that file says"
        )
    why = (
        f"it does not mask the padding with its '{mask}' input"
        if mask
        else f"it reads no attention mask {MASKS}: export it with one, as Hugging Face exports do"
    )
    return (
        f"the model's answer for a text changes when a longer text in the same request pads it "
        f"('{output}' moves by {change:.3g}), so callers would get answers that depend on "
        f"their batch: {why}"
    )


def describe_padding(served: HfTokenizer) -> str:
    rule = served.padding
    multiple = rule.get("pad_to_multiple_of")
    fixed = rule.get("length")
    size = f"to {fixed}" if fixed else "to the longest"
    return f"{rule['direction']} side with id {served.pad_id}, {size}" + (
        f", a multiple of {multiple}" if multiple else ""
    )
