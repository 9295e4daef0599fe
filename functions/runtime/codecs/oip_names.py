"""How many inputs and outputs an Open Inference Protocol request may name: no more than its
model has (each is named once; a text model's text may come beside the ids it stands for).

A request naming more can only be refused, so only one name past the bound is read: a name
repeated among them is said as such, else the answer says the bound and names one the model
lacks. Every later step per name (the unknown-output check, class counts, a refusal quoting a
wide integer found again in the body) is then bounded by the model, not by the body: 80,000
output names in 1.4 MB were compared pairwise for repeats, 42 s of the one event loop `aiaas
serve` answers every other request on, its health probes included.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from functions.runtime.input_messages import describe
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import text_input


class Limits(NamedTuple):
    inputs: int
    outputs: int


class TooMany(Exception):
    """A request names more inputs or outputs than its model has (`explained` says so)."""

    def __init__(self, what: str, sent: int, read: Iterable[str]) -> None:
        super().__init__(what, sent)
        self.what = what  # "inputs" or "outputs"
        self.sent = sent
        self.read = tuple(read)  # the names read, each once: one at least is not the model's

    def explained(self, model: ModelManifest) -> str:
        """The unknown name as the model's check would say it, and the bound."""
        specs = model.outputs if self.what == "outputs" else model.inputs
        text = text_input(model) if self.what == "inputs" else None
        known = {spec.name for spec in specs} | ({text.field} if text is not None else set())
        stray = next((name for name in self.read if name not in known), None)
        bound = f"the request names {self.sent} {self.what}, more than its {len(specs)}"
        if stray is None:  # none can be: each name read once, one more than the model has
            return f"{bound} (model {model.name}:{model.version})"
        if self.what == "outputs":
            has = [spec.name for spec in specs]
            return f"unknown output {stray[:40]!r}; this model has outputs {has} ({bound})"
        takes = ", ".join(describe(spec) for spec in specs)
        beside = f", or its text {text.field!r} for the ids" if text is not None else ""
        return f"unknown input {stray[:40]!r}; this model takes {takes}{beside} ({bound})"


# id(manifest) -> (the manifest, its limits): a function serves a few versions; the entry holds
# the manifest, so no other object can take its id while the entry is there.
_KNOWN: dict[int, tuple[ModelManifest, Limits]] = {}
_KNOWN_MOST = 64


def limits(model: ModelManifest | None) -> Limits | None:
    """The most inputs and outputs a request to `model` may name; None: no model to bound by.
    A model with a vocabulary may be sent its text beside its inputs' names (refused by name).
    Found once a manifest (a request's lookup ~0.1 us, the tuple built ~0.4)."""
    if model is None:
        return None
    known = _KNOWN.get(id(model))
    if known is not None and known[0] is model:
        return known[1]
    text = "vocab_file" in model.preprocessing  # text_input's first test, at a tenth its cost
    found = Limits(len(model.inputs) + text, len(model.outputs))
    if len(_KNOWN) >= _KNOWN_MOST:
        _KNOWN.clear()
    _KNOWN[id(model)] = (model, found)
    return found


def bounded(items: list[Any], most: int | None) -> tuple[list[Any], bool]:
    """(the items to read, whether there are more than `most`): then the first `most + 1`,
    among which a name is repeated (said so as they are read) or one is not the model's."""
    if most is None or len(items) <= most:
        return items, False
    return items[: most + 1], True
