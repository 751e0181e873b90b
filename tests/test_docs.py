"""docs/backprop.md: every code block runs and prints exactly the output shown under it.

If this fails after a deliberate change, run ``python docs/update_docs.py`` and review
the diff of the page.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "backprop.md"


def _update_docs():
    spec = importlib.util.spec_from_file_location("update_docs", ROOT / "docs" / "update_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["update_docs"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def page():
    tool = _update_docs()
    blocks = tool.parse(PAGE.read_text(encoding="utf-8"))
    return blocks, tool.run(blocks, PAGE.name)


def test_the_page_walks_through_every_topic():
    text = PAGE.read_text(encoding="utf-8")
    for heading in ("computational graph", "chain rule", "Add and multiply", "ReLU and sigmoid",
                    "affine layer", "Softmax with loss", "gradient check", "Training",
                    "through time", "Attention and softmax"):
        assert heading in text, heading


def test_every_python_block_is_followed_by_its_output(page):
    blocks, _ = page
    assert len(blocks) >= 8
    missing = [b.line for b in blocks if b.expected is None]
    assert not missing, f"python blocks at lines {missing} have no ```text block after them"


def test_printed_output_matches_the_page(page):
    blocks, outputs = page
    for block, output in zip(blocks, outputs):
        assert output == block.expected, (
            f"the block at line {block.line} of {PAGE.name} now prints:\n{output}\n"
            f"but the page shows:\n{block.expected}\n"
            "(run `python docs/update_docs.py` after a deliberate change)")


def test_update_docs_leaves_an_up_to_date_page_unchanged(page):
    blocks, outputs = page
    tool = _update_docs()
    text = PAGE.read_text(encoding="utf-8")
    assert tool.render(text, blocks, outputs) == text


README = ROOT / "README.md"
SLOW_MARK = "the tests run every README block but this"


def _readme_blocks() -> list[str]:
    import re

    return re.findall(r"```python\n(.*?)^```", README.read_text(encoding="utf-8"),
                      re.DOTALL | re.MULTILINE)


def test_the_readme_has_python_blocks_and_marks_the_slow_one():
    blocks = _readme_blocks()
    assert len(blocks) >= 4
    assert sum(SLOW_MARK in block for block in blocks) == 1


@pytest.mark.parametrize("index", range(len(_readme_blocks())))
def test_every_readme_block_runs_on_its_own(index, tmp_path, monkeypatch):
    """Each Python block of the README runs as written in a fresh namespace (a reader
    copies one block, not the page), in an empty folder for the files it writes."""
    block = _readme_blocks()[index]
    if SLOW_MARK in block:
        pytest.skip("the PTB training block downloads data and trains for minutes")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    exec(compile(block, f"README.md block {index + 1}", "exec"), {"__name__": "readme"})


OPERATORS = ROOT / "docs" / "operators.md"


def test_the_operator_reference_is_up_to_date():
    """docs/operators.md is exactly what docs/update_docs.py renders from the operations
    and their table of cases: a new operation, or a changed rule, formula, domain,
    special point or case, makes it stale."""
    pages = _update_docs().generated_pages()
    assert OPERATORS in pages
    expected = pages[OPERATORS]()
    shown = OPERATORS.read_text(encoding="utf-8") if OPERATORS.exists() else ""
    if shown != expected:
        new, old = expected.splitlines(), shown.splitlines()
        line = next((i for i, (a, b) in enumerate(zip(new, old)) if a != b),
                    min(len(new), len(old)))
        pytest.fail(f"docs/operators.md is stale from line {line + 1}: it shows "
                    f"{old[line] if line < len(old) else '(nothing)'!r}, the operations give "
                    f"{new[line] if line < len(new) else '(nothing)'!r}; run "
                    "`python docs/update_docs.py` and commit the page")


def test_the_readme_links_the_operator_reference():
    assert "docs/operators.md" in README.read_text(encoding="utf-8")
