"""onnxruntime's run-time errors, read: a node that refused the values it was given (a category
a OneHotEncoder never saw, an index past a Gather's table) is the input's fault, a 422 with
the op and onnxruntime's own words; anything else stays an internal failure.

onnxruntime raises untyped errors whose text is `[ONNXRuntimeError] : 1 : FAIL : Non-zero
status code returned while running OneHotEncoder node. Name:'...' Status Message: ...`; the
status message of an internal check starts with the source file and C++ function that made
it, which a caller has no use for (and which say how the server was built).
"""

from __future__ import annotations

import re
from http import HTTPStatus

from functions.runtime.errors import AiaasError, InvalidInput
from functions.runtime.manifest import TensorSpec

# The status codes a kernel returns for what it was fed (onnxruntime's common/status.h):
# ENGINE_ERROR, EP_FAIL, NOT_IMPLEMENTED and the rest are the server's or the graph's.
_REFUSING_CODES = ("FAIL", "INVALID_ARGUMENT", "RUNTIME_EXCEPTION")
_NODE = re.compile(
    r"\[ONNXRuntimeError\] : \d+ : (?P<code>[A-Z_]+) : Non-zero status code returned while "
    r"running (?P<op>\w+) node\. Name:'(?P<node>[^']*)' Status Message: (?P<message>.*)",
    re.DOTALL,
)
# `/onnxruntime_src/.../reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(...)
# input_shape_size == requested_shape_size was false. The input tensor cannot be reshaped...`
_SOURCE = re.compile(r"^\S+\.(?:h|cc|cpp|c|cu):\d+ ")
# The C++ function a location names after it (`concatbase.h:135 PrepareForComputeImpl Non
# concat axis...`): a name, or a signature whose arguments may hold spaces.
_FUNCTION = re.compile(r"^\S+\.(?:h|cc|cpp|c|cu):\d+ [^\s(]+(?:\([^)]*\))? ")
_CHECK = re.compile(r" was false\. ")
# A kernel reporting a status raised under it: `virtual OrtValue* onnxruntime::OpKernelContext::
# OutputMLValue(int, const onnxruntime::TensorShape&) [ONNXRuntimeError] : 1 : FAIL : tensor.cc:57
# CalculateTensorStorageSize Tensor shape.Size() must be >= 0` (a ConstantOfShape fed -5).
_NESTED = re.compile(r"^.*\[ONNXRuntimeError\] : \d+ : [A-Z_]+ : (?P<file>\S+\.(?:h|cc):\d+ )\w+ ")
_OUT_OF_MEMORY = ("bad_alloc", "Failed to allocate", "out of memory")
# What a caller can do about the refusals converters commonly export.
_HINTS = {
    "Unknown Category": (
        "a category the model was not trained on (scikit-learn's "
        "OneHotEncoder(handle_unknown='ignore') exports a model that encodes it as zeros)"
    ),
}
MAX_REASON = 300
# onnxruntime's words when a node's input shapes do not fit together (not its values).
_SHAPE_MISMATCH = (
    "cannot be reshaped",
    "Attempting to broadcast",
    "Non concat axis dimensions must match",
    "invalid expand shape",
    "Dimension mismatch",
    "dimension mismatch",
)


class ModelRefused(InvalidInput):
    """A node of the model failed on these input values; `reason` says which op and why
    (`op` and `node`: the failing node's op type and name, for `unseen_values`)."""

    def __init__(self, reason: str, op: str = "", node: str = "") -> None:
        super().__init__(f"the model refused these inputs: {reason}")
        self.reason, self.op, self.node = reason, op, node


class ModelFault(ModelRefused):
    """A node's shapes did not fit together on inputs the caller could only choose the row
    count of (every other dimension fixed, no integer input that could carry a shape): the
    graph's fault, typically a batch size a trace baked in. A 500, counted as one (alarms and
    rollouts see it; it was a 422, so a rollout promoted a version failing every odd batch);
    its message says so, as the caller can do nothing. Batch scoring still isolates the rows
    (a subclass of ModelRefused), with this reason."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, refused: ModelRefused, rows: int) -> None:
        reason = (
            f"{refused.reason} (on {rows} row{'s' if rows != 1 else ''} that match the "
            "model's signature: the model cannot answer this batch size)"
        )
        super().__init__(reason, refused.op, refused.node)
        self.message = f"the model failed: {reason}"
        self._public_message = self.message


def rows_only(inputs: tuple[TensorSpec, ...]) -> bool:
    """Whether a caller sending inputs that pass validation chooses nothing but the row
    count: every input numeric but not an integer (no ids or shapes), every other dimension
    fixed."""
    return bool(inputs) and all(
        spec.dtype.startswith(("float", "bool")) and all(d > 0 for d in spec.shape[1:])
        for spec in inputs
    )


def model_fault(refused: ModelRefused, inputs: tuple[TensorSpec, ...], rows: int) -> AiaasError:
    """`refused` as the model's fault where its shapes failed on rows the caller could send
    no other way (`rows_only`), else as it is."""
    if rows_only(inputs) and any(words in refused.reason for words in _SHAPE_MISMATCH):
        return ModelFault(refused, rows)
    return refused


def refusal(exc: Exception) -> ModelRefused | None:
    """The refusal `exc` (raised by a session's run) reports, or None: not a node's failure,
    or one no input causes (memory)."""
    text = str(exc)
    found = _NODE.search(text)
    if found is None or found["code"] not in _REFUSING_CODES:
        return None
    if out_of_memory(exc):
        return None
    return ModelRefused(_readable(found["op"], found["message"]), found["op"], found["node"])


def out_of_memory(exc: Exception) -> bool:
    """Whether onnxruntime failed for want of memory (a graph allocating gigabytes, or too
    many such requests at once): the server's state, not the caller's values."""
    return any(words in str(exc) for words in _OUT_OF_MEMORY)


def _readable(op: str, message: str) -> str:
    """`Op: message`, without the source file, C++ function and check an internal assert
    prefixes, plus what to do where that is known."""
    message = _NESTED.sub("", message.strip(), count=1)
    if _SOURCE.match(message):
        check = _CHECK.search(message)
        message = message[check.end() :] if check else _FUNCTION.sub("", message)
    hints = [hint for words, hint in _HINTS.items() if words in message]
    reason = f"{op}: {message.rstrip('.')}; {hints[0]}" if hints else f"{op}: {message}"
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."
