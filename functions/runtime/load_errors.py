"""onnxruntime's refusals to load a file, said in one line with the fix, for `aiaas publish`.

onnxruntime's text names the C++ source file and function that refused (a multi-line
`model_load_utils.h:46 void onnxruntime::model_load_utils::ValidateOpsetForDomain(...)`), which
a data scientist has no use for; the refusals a careless export commonly meets (an opset newer
than this onnxruntime, an operator from a custom domain, a text model's locale the machine
lacks) are said with what to do.
"""

from __future__ import annotations

import re

import onnxruntime as ort

_NEW_OPSET = re.compile(
    r"Opset (?P<opset>\d+) is under development.*?support for domain (?P<domain>\S+) is till "
    r"opset (?P<supported>\d+)",
    re.DOTALL,
)
_UNKNOWN_OP = re.compile(r"(?P<domain>[\w.]*):(?P<op>\w+)\(-?\d+\) is not a registered function/op")
_SOURCE = re.compile(r"/\S+\.(?:h|cc|cpp):\d+ [^(]*\([^)]*\)[^ ]* ")
_LOCALE = re.compile(r"Failed to construct locale with name:(?P<locale>[^:\s]+)")
_TOKENEXP = re.compile(r"Can not digest tokenexp: (?P<why>[^\n]*)")
_TWICE = re.compile(r"Duplicate definition of name \((?P<name>[^)]*)\)")


def load_refusal(error: str) -> str:
    """Why onnxruntime would not load a file, one line, with the fix where it is known."""
    found = _NEW_OPSET.search(error)
    if found:
        supported = found["supported"]
        return (
            f"it uses opset {found['opset']} of {found['domain']}, newer than onnxruntime "
            f"{ort.__version__} runs (up to opset {supported}): export it again with opset "
            f"{supported} or lower (torch.onnx.export's opset_version, skl2onnx's target_opset)"
        )
    found = _UNKNOWN_OP.search(error)
    if found:
        domain = found["domain"] or "ai.onnx"
        return (
            f"it uses operator {found['op']} of domain {domain}, which onnxruntime does not "
            "know (a custom op, or one newer than this onnxruntime): export it with standard "
            "ONNX operators"
        )
    found = _LOCALE.search(error)
    if found:  # skl2onnx's text vectorizers lower-case in en_US.UTF-8 unless told otherwise
        return (
            f"its StringNormalizer (a text vectorizer's lower-casing) asks for the locale "
            f"{found['locale']}, which this machine does not have (slim images often lack it): "
            "export it with a locale every Linux has, skl2onnx's options={id(vectorizer): "
            "{'locale': 'C.UTF-8'}}, or install that locale where it is served"
        )
    found = _TOKENEXP.search(error)
    if found:  # skl2onnx copies a custom token_pattern into the Tokenizer; onnxruntime reads RE2
        return (
            f"its Tokenizer's pattern (a text vectorizer's token_pattern) is not one onnxruntime's "
            f"RE2 reads ({found['why'].strip()}): RE2 has no (?u), lookarounds or backreferences; "
            "export with skl2onnx's options={id(vectorizer): {'tokenexp': ...}} giving the "
            "pattern in RE2's syntax (Python's \\w is [\\p{L}\\p{N}_]; scikit-learn's default "
            "pattern is [\\p{L}\\p{N}_]{2,})"
        )
    found = _TWICE.search(error)
    if found:  # torch 2.x's dynamo export: output_names=["embedding"] beside an aten.embedding
        return (
            f"two of its nodes write a value named {found['name']!r}: torch.onnx.export's dynamo "
            "exporter names a node's value after its op (embedding, linear, relu, ...) and can "
            "give that name, when output_names has it, to another node too: name that output "
            f"otherwise ('{found['name']}_out'), or export with dynamo=False"
        )
    return " ".join(_SOURCE.sub("", error).split())
