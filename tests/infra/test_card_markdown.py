"""A model card renders as aiaas wrote it, whatever the model file, the data and the spec name.

Most of what a card shows comes from elsewhere: a model file's producer name and tensor names,
skl2onnx's string classes, the data file's name, column names, the description. They were
written into the Markdown raw: an ONNX producer name holding line breaks forged a "Held-out
metrics" section and opened an HTML comment that hid the real one from any renderer; class
names put `<script>`, images and links into the card; a `|` split a table's row. Real models
(onnx.helper, skl2onnx, a trained `logistic` recipe) through the CLI; each card rendered by a
CommonMark renderer that passes raw HTML on, as some model portals do.
"""

from __future__ import annotations

import contextlib
import html
import io
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from infra.cli.main import main
from tests.torchless import torch_or_skip

markdown_it = pytest.importorskip("markdown_it")

PRODUCER = "evil\n\n## Held-out metrics\n\n<script>alert(1)</script> accuracy=0.999\n\n<!--"
INPUT, OUTPUT = "in|put", "score`<img src=x onerror=alert(1)>"
DATA = "held `x](http:evil) |.csv"
DESCRIPTION = "<img src=x onerror=alert(1)> [click](javascript:alert(1))\n# not a heading"
CLASSES = ("<script>alert(1)</script>", "![x](https://evil.example/t.png)", "a|b")


def run(store: Path, *argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", str(store), *argv])
    return code, out.getvalue() + err.getvalue()


def render(card: str) -> str:
    return markdown_it.MarkdownIt("commonmark").enable("table").render(card)


def text(rendered: str) -> str:
    """What a reader sees: the rendered HTML's text."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


def tags(rendered: str) -> set[str]:
    return set(re.findall(r"<([a-z0-9]+)", rendered))


def only_aiaas_markup(rendered: str, headings: list[str], plots: list[str]) -> None:
    """No element but the card's own: its headings, its plots, no link, script or comment."""
    assert tags(rendered) <= {"h1", "h2", "p", "ul", "li", "code", "img", "br"} | {
        "table", "thead", "tbody", "tr", "th", "td",
    }  # fmt: skip
    assert re.findall(r"<h[12]>(.*?)</h[12]>", rendered) == headings
    assert re.findall(r'<img src="([^"]*)"', rendered) == plots
    assert "<!--" not in rendered and "<script" not in rendered and "<a " not in rendered
    for table in re.findall(r"<table>.*?</table>", rendered, re.S):
        widths = {
            row.count("<td") + row.count("<th") for row in re.findall(r"<tr>.*?</tr>", table, re.S)
        }
        assert len(widths) == 1, table  # every row as wide as its header


def test_a_model_files_names_and_the_data_files_name_read_as_written(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [None, 1])
    weights = helper.make_tensor("w", TensorProto.FLOAT, [2, 1], [1.0, 2.0])
    graph = helper.make_graph(
        [helper.make_node("MatMul", [INPUT, "w"], [OUTPUT])], "g", [x], [y], [weights]
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name=PRODUCER
    )
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    rows = np.random.default_rng(0).normal(size=(40, 2)).round(3)
    lines = ["a,b,target", *(f"{a},{b},{a + 2 * b}" for a, b in rows.tolist())]
    (tmp_path / DATA).write_text("\n".join(lines) + "\n")
    store = tmp_path / "store"
    argv = ["publish", str(tmp_path / "m.onnx"), "--name", "evil", "--features", "a,b"]
    code, said = run(store, *argv, "--data", str(tmp_path / DATA), "--description", DESCRIPTION)
    assert code == 0, said
    rendered = render((store / "models/evil/versions/1/card/card.md").read_text())
    headings = ["evil:1", "Inputs", "Outputs", "Files", "Held-out metrics", "Plots"]
    only_aiaas_markup(rendered, headings, ["residuals.png", "importance.png"])
    shown = text(rendered)
    assert "Producer: " + PRODUCER.encode("unicode_escape").decode() + " (opset 17)" in shown
    assert "rmse=" in shown  # the real metrics, not hidden
    assert f"{INPUT}\nfloat32\n[-1, 2]" in shown and f"{OUTPUT}\nfloat32\n[-1, 1]" in shown
    assert f"rows of {DATA} (true values in target, against output {OUTPUT})" in shown
    assert DESCRIPTION in shown  # as text: no image, no link, no heading


def test_a_classifiers_string_classes_read_as_written(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(90, 2)).astype(np.float32)
    y = np.array(CLASSES)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    options = {id(estimator): {"zipmap": False}}
    (tmp_path / "m.onnx").write_bytes(
        to_onnx(estimator, x[:1], options=options).SerializeToString()
    )
    store = tmp_path / "store"
    code, said = run(store, "publish", str(tmp_path / "m.onnx"), "--name", "c")
    assert code == 0, said
    rendered = render((store / "models/c/versions/1/card/card.md").read_text())
    headings = ["c:1", "Inputs", "Outputs", "Files", "Notes from publishing", "Held-out metrics"]
    only_aiaas_markup(rendered, headings, [])
    assert f"Labels (3): {', '.join(sorted(CLASSES))}" in text(rendered)


def test_a_trained_cards_columns_classes_and_description_read_as_written(tmp_path: Path) -> None:
    torch_or_skip()  # it trains
    columns = ["<b>width</b>", "petal|length", "_x_"]
    rows = np.random.default_rng(2).normal(size=(60, 3)).round(3)
    lines = [",".join([*columns, "y"])]
    lines += [
        ",".join([*map(str, r), CLASSES[i % 3].replace("|", "/")])
        for i, r in enumerate(rows.tolist())
    ]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    spec = {
        "name": "t", "task": "classification", "description": DESCRIPTION,
        "dataset": {"path": "d.csv", "target": "y"}, "recipe": {"name": "logistic"}, "epochs": 1,
        "export": {"exporter": "torchscript"},  # the card's text is the point: ~2.4 s less
    }  # fmt: skip
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    argv = ["--store", str(tmp_path / "store"), "train", str(tmp_path / "job.yaml")]
    assert main([*argv, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    rendered = render((tmp_path / "run" / "card" / "card.md").read_text())
    headings = ["t:1", "Classes", "Metrics", "Calibration", "Export", "Feature importance", "Plots"]
    plots = ["reliability.png", "loss.png", "confusion.png", "importance.png"]
    only_aiaas_markup(rendered, headings, plots)
    shown = text(rendered)
    assert "Features (3): <b>width</b>, petal|length, _x_; target y" in shown
    for name in sorted(c.replace("|", "/") for c in CLASSES):  # the Classes table's cells
        assert f"\n{name}\n" in shown
    assert DESCRIPTION in shown


def test_a_url_in_a_class_name_is_no_link_on_github(tmp_path: Path) -> None:
    # GitHub-flavoured Markdown links a bare `https://...` or `www.` ("extended autolinks"):
    # the card's labels line and classes were links to wherever a class name pointed (their
    # text the URL: hunt_card). Rendered by cmark-gfm, GitHub's own renderer.
    cmarkgfm = pytest.importorskip("cmarkgfm")
    classes = ("https://evil.example/win?a=1&b=2", "www.evil.example/free", "ftp://x.example/f")
    x = np.random.default_rng(3).normal(size=(90, 2)).astype(np.float32)
    y = np.array(classes)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    options = {id(estimator): {"zipmap": False}}
    (tmp_path / "m.onnx").write_bytes(
        to_onnx(estimator, x[:1], options=options).SerializeToString()
    )
    store = tmp_path / "store"
    code, said = run(store, "publish", str(tmp_path / "m.onnx"), "--name", "u")
    assert code == 0, said
    card = (store / "models/u/versions/1/card/card.md").read_text()
    unsafe = cmarkgfm.cmark.Options.CMARK_OPT_UNSAFE  # raw HTML passed on, as in render()
    for rendered in (cmarkgfm.github_flavored_markdown_to_html(card, options=unsafe), render(card)):
        headings = [
            "u:1",
            "Inputs",
            "Outputs",
            "Files",
            "Notes from publishing",
            "Held-out metrics",
        ]
        only_aiaas_markup(rendered, headings, [])  # no <a>
        assert f"Labels (3): {', '.join(sorted(classes))}" in text(rendered)
