"""Every file, folder, `python -m` module and relative link the README and docs/ name exists: a
file moved or renamed cannot leave the docs pointing at nothing (test_cli_docs_commands.py
does the same for `aiaas` commands and options)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "training" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# A path from the repository's root: `infra/local/ending.py`, `events/local/`, `bench.foo` is not.
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:functions|infra|training|tests|bench|events|docs)/[\w./*-]*[\w*/])"
)
MODULE = re.compile(r"python3? -m ([A-Za-z_][\w.]*)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
ANCHORED = re.compile(r"\]\(([^)#\s]*)#([^)\s]+)\)")  # `[x](docs/a.md#b)`, `[x](#b)`
# Modules of the standard library, or of a tool the doc has the reader install first (`build`)
STDLIB_OR_TOOL = {
    "pip",
    "venv",
    "pytest",
    "compileall",
    "http.server",
    "json.tool",
    "cProfile",
    "build",
}


def mentions(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            found += [(f"{doc.relative_to(REPO)}:{number}", m) for m in pattern.findall(line)]
    return found


def test_the_docs_name_paths_modules_and_links() -> None:
    # Guards the extraction: a pattern that matched nothing would pass every doc.
    assert len(mentions(REPO_PATH)) > 50
    assert len(mentions(MODULE)) > 20
    assert len(mentions(LINK)) > 20


def test_every_repository_path_named_exists() -> None:
    missing = [
        f"{where}: {path}"
        for where, path in mentions(REPO_PATH)
        if not any(REPO.glob(path.rstrip("/")))  # `events/batch_*.json` is a glob
    ]
    assert not missing, "\n".join(missing)


def test_every_python_m_module_named_exists() -> None:
    missing = [
        f"{where}: python -m {module}"
        for where, module in mentions(MODULE)
        if module not in STDLIB_OR_TOOL and importlib.util.find_spec(module) is None
    ]
    assert not missing, "\n".join(missing)


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for target in LINK.findall(line):
                external = target.startswith(("http://", "https://", "mailto:"))
                if not external and not (doc.parent / target).exists():
                    broken.append(f"{doc.relative_to(REPO)}:{number}: {target}")
    assert not broken, "\n".join(broken)


def anchors(doc: Path) -> set[str]:
    """The `#fragment`s GitHub gives `doc`'s headings: lower case, punctuation but `-` and `_`
    dropped, spaces made `-`, a repeated one suffixed `-1`, `-2`, ... (code blocks skipped)."""
    found: set[str] = set()
    inside = False
    for line in doc.read_text().splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        heading = None if inside else re.match(r"#+\s+(.*)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            taken, n = slug, 0
            while taken in found:
                n += 1
                taken = f"{slug}-{n}"
            found.add(taken)
    return found


def test_every_link_to_a_heading_finds_it() -> None:
    """A heading reworded (a date added to it) left links that open the page at its top."""
    linked = [
        (f"{doc.relative_to(REPO)}:{number}", doc.parent / target if target else doc, fragment)
        for doc in DOCS
        for number, line in enumerate(doc.read_text().splitlines(), 1)
        for target, fragment in ANCHORED.findall(line)
        if not target.startswith(("http://", "https://"))
    ]
    assert len(linked) > 20  # the pattern finds them
    broken = [
        f"{where}: #{fragment}"
        for where, page, fragment in linked
        if page.suffix == ".md" and page.exists() and fragment not in anchors(page)
    ]
    assert not broken, "\n".join(broken)


SETTING = re.compile(r"\b(AIAAS_[A-Z0-9_]*[A-Z0-9])\b")
# Set by one of our processes for another, never by a user: not documented as settings.
INTERNAL_SETTINGS = {
    "AIAAS_TRAIN_SPEC": "`aiaas train --submit` hands the spec to the job's container in it",
    "AIAAS_BATCH_LOCAL_RESUME_BEFORE": "`aiaas serve` tells one process which jobs to resume",
    "AIAAS_BENCH_PROGRESS": "bench/batch_throughput.py tells its child processes to show progress",
}


def code_text() -> str:
    return (
        "\n".join(
            path.read_text()
            for package in ("functions", "infra", "training", "bench")
            for path in (REPO / package).rglob("*.py")
        )
        + (REPO / "template.yaml").read_text()
    )


def test_every_setting_the_docs_name_is_one_the_code_reads() -> None:
    """An `AIAAS_*` variable renamed or dropped in the code must leave the docs too: one the
    docs still named would be set by a user and do nothing."""
    named = {name for _, name in mentions(SETTING)}
    assert len(named) > 30
    code = code_text()
    assert sorted(name for name in named if not re.search(rf"\b{name}\b", code)) == []


def test_every_setting_the_code_reads_is_named_in_the_docs() -> None:
    """The other way round: an `AIAAS_*` variable the code reads that no doc names is a setting
    a user cannot find (`AIAAS_TRAINING_JOB_QUEUE` and `AIAAS_TRAINING_JOB_DEFINITION`, which
    `aiaas train --submit` falls back on, were named only in its --help)."""
    read = set(SETTING.findall(code_text()))
    assert len(read) > 30
    named = {name for _, name in mentions(SETTING)}
    assert sorted(read - named - INTERNAL_SETTINGS.keys()) == []
    assert sorted(INTERNAL_SETTINGS.keys() - read) == []  # the list names no setting gone
