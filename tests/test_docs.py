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
