"""The pages under docs/: the code's citations point to existing pages and sections, and the
pages' own links resolve (files and heading anchors)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCES = sorted((ROOT / "jinter").glob("*.py"))

# The section numbers and titles the code's citations rely on ("docs/math.md §N").
MATH_SECTIONS = {
    1: "Players, masks, values",
    2: "Transforms",
    3: "AND-OR decomposition",
    4: "Salience, sparsity, order distributions",
    5: "Theory of the two-phase dynamics",
    6: "Decay- and spindle-shaped interactions",
    7: "Generalization power",
    8: "Sparsity bound",
}

# "math.md §3", "MATH.md §4–7", "docs/math.md §4, §7", "math.md §4 and §7", "math.md §3.7"
_SECTION = r"§\s*\d+(?:\.\d+)?(?:\s*[–-]\s*\d+)?"
_CITATION = re.compile(rf"math\.md\s*\(?((?:{_SECTION})(?:\s*(?:,|and|or)\s*{_SECTION})*)", re.IGNORECASE)
_DOCS_FILE = re.compile(r"docs/([\w\-./]+\.md)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _headings(path: Path) -> list[tuple[int, str]]:
    """``(level, text)`` of the Markdown headings of a file, outside fenced blocks."""
    out, fenced = [], False
    for line in _lines(path):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m and not fenced:
            out.append((len(m.group(1)), m.group(2)))
    return out


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _section_ids(path: Path) -> set[str]:
    """Section numbers of headings such as ``## 3. AND-OR decomposition`` or ``### 3.7 Tie rules``."""
    ids = set()
    for _, text in _headings(path):
        m = re.match(r"(\d+(?:\.\d+)?)\.?\s", text)
        if m:
            ids.add(m.group(1))
    return ids


def _cited_sections(text: str) -> list[str]:
    """Section ids cited together with math.md; ranges ``§4–7`` are expanded."""
    ids = []
    for m in _CITATION.finditer(text):
        for part in re.findall(_SECTION, m.group(1)):
            nums = re.findall(r"\d+(?:\.\d+)?", part)
            if len(nums) == 2 and "." not in nums[0]:
                ids.extend(str(k) for k in range(int(nums[0]), int(nums[1]) + 1))
            else:
                ids.append(nums[0])
    return ids


def test_cited_sections_parser():
    assert _cited_sections("(MATH.md §4–7)") == ["4", "5", "6", "7"]
    assert _cited_sections("docs/math.md §4, §7 and") == ["4", "7"]
    assert _cited_sections("docs/math.md §4 and §7.") == ["4", "7"]
    assert _cited_sections("see docs/math.md §3.7; then §5") == ["3.7"]
    assert _cited_sections("MATH.md 1") == []


def test_math_has_the_eight_numbered_sections():
    top = [text for level, text in _headings(DOCS / "math.md") if level == 2]
    want = [f"{k}. {title}" for k, title in MATH_SECTIONS.items()]
    assert top == want


def test_code_citations_of_math_name_existing_sections():
    sections = _section_ids(DOCS / "math.md")
    cited, missing = 0, []
    for path in SOURCES:
        for lineno, line in enumerate(_lines(path), 1):
            for sid in _cited_sections(line):
                cited += 1
                if sid not in sections:
                    missing.append(f"{path.relative_to(ROOT)}:{lineno}: §{sid}")
    assert cited > 0, "no citation of math.md in jinter/*.py"
    assert not missing, "cited sections missing from docs/math.md:\n" + "\n".join(missing)


def test_docs_references_and_links_resolve():
    """``docs/<file>.md`` named in jinter/*.py exists; every relative link of the docs pages
    points to an existing file and, with ``#anchor``, to one of its headings."""
    refs: list[tuple[str, Path, str]] = []  # (where, target file, anchor)
    for path in SOURCES:
        for lineno, line in enumerate(_lines(path), 1):
            for name in _DOCS_FILE.findall(line):
                refs.append((f"{path.relative_to(ROOT)}:{lineno}", DOCS / name, ""))
    for page in sorted(DOCS.glob("*.md")):
        for lineno, line in enumerate(_lines(page), 1):
            for link in _LINK.findall(line):
                if re.match(r"[a-z]+:", link):  # http(s), mailto: not checked here
                    continue
                target, _, anchor = link.partition("#")
                refs.append((f"{page.relative_to(ROOT)}:{lineno}", (page.parent / target) if target else page, anchor))
    assert refs
    broken = []
    for where, target, anchor in refs:
        if not target.is_file():
            broken.append(f"{where}: no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        elif anchor and target.suffix == ".md" and anchor not in {_slug(t) for _, t in _headings(target)}:
            broken.append(f"{where}: no heading #{anchor} in {target.name}")
    assert not broken, "\n".join(broken)


def test_code_cites_docs_math_not_MATH_md():
    """Citations in the package must read ``docs/math.md §N`` (the page users get).

    NOTE: this fails until every "MATH.md §N" citation in jinter/*.py (the project's internal
    notes, not shipped) is replaced by "docs/math.md §N"; it then guards against new ones.
    """
    bad = []
    for path in SOURCES:
        for lineno, line in enumerate(_lines(path), 1):
            for m in re.finditer(r"math\.md", line, re.IGNORECASE):
                start = m.start()
                if line[max(0, start - 5) : start] != "docs/" or m.group(0) != "math.md":
                    bad.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not bad, f"{len(bad)} citation(s) not of the form docs/math.md:\n" + "\n".join(bad)
