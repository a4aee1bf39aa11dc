"""The user's documentation stays whole: every scenario key is documented, every link resolves."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from sim.scenario import accepted_keys

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINKED = [ROOT / "README.md", *DOCS]

# [text](target) and [text]: target, skipping images' own syntax nowhere: an image's target must resolve too
_INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _links(text: str) -> list[str]:
    text = _FENCE.sub("", text)  # code blocks hold commands, not links
    return _INLINE.findall(text) + _REFERENCE.findall(text)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file."""
    out = set()
    for line in _FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def test_docs_exist():
    names = {p.name for p in DOCS}
    assert {"scenarios.md", "api.md", "operations.md", "benchmarks.md"} <= names


def _problems(doc: Path, root: Path) -> list[str]:
    """Relative links of ``doc`` that do not resolve to a file (and heading) inside ``root``."""
    problems = []
    for target in _links(doc.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        dest = doc if not path_part else (doc.parent / unquote(path_part)).resolve()
        if not dest.is_relative_to(root):
            problems.append(f"{target}: points outside the repository")
        elif not dest.exists():
            problems.append(f"{target}: {dest.relative_to(root)} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            problems.append(f"{target}: no heading #{anchor} in {dest.relative_to(root)}")
    return problems


@pytest.mark.parametrize("doc", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc: Path):
    problems = _problems(doc, ROOT)
    assert not problems, f"{doc.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_nothing_refers_to_files_outside_the_project():
    sources = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    for folder in ("docs", "scheduler", "sim", "examples", "notebooks", "benchmarks", "tests"):
        sources += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".md", ".py", ".yaml", ".ipynb")]
    outside = re.compile(r"\.\./shared|/work/|(?<![\w/])(?:API|SCENARIO|DESIGN)\.md")
    hits = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in sources
        if p != Path(__file__).resolve()
        for m in outside.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)


def test_every_scenario_key_the_validator_accepts_is_documented():
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    missing = [
        f"{where}: {key}" for where, keys in accepted_keys().items() for key in keys if f"`{key}`" not in text
    ]
    assert not missing, "docs/scenarios.md does not mention:\n" + "\n".join(missing)


def test_the_link_checker_catches_broken_links(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "a.md").write_text("# Title\n\n## Some section\n")
    (tmp_path / "outside.md").write_text("x")
    doc = repo / "README.md"
    doc.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#some-section) [web](https://example.org)\n"
        "[gone](docs/missing.md) [out](../outside.md) [anchor](docs/a.md#nope)\n"
        "```\n[in a code block](docs/ignored.md)\n```\n"
    )
    found = _problems(doc, repo)
    assert [p.split(":")[0] for p in found] == ["docs/missing.md", "../outside.md", "docs/a.md#nope"]
