"""Bring the documentation pages up to date with the code, so that they can never go
stale: run the Python blocks of the walkthrough pages and write their printed output
into the ``text`` block after each one, and write the generated pages whole.

    python docs/update_docs.py            # rewrite every page that is out of date
    python docs/update_docs.py --check    # only report the pages that are out of date

A walkthrough page is Markdown in which every ```python block is followed by a ```text
block holding what it prints. The blocks of one page run in order in one namespace,
like cells of a notebook. A generated page (the operator reference, docs/operators.md)
is rendered from the operations themselves (``docs/operator_page.py``).
``tests/test_docs.py`` uses the same functions to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
PAGES = [DOCS / "backprop.md"]


def generated_pages() -> dict[Path, Callable[[], str]]:
    """The pages written whole from the code, each with the function rendering it."""
    if str(DOCS) not in sys.path:
        sys.path.insert(0, str(DOCS))
    import operator_page

    return {DOCS / "operators.md": operator_page.render}

# A python block, then (after blank lines) its text block, which may still be missing.
_BLOCK = re.compile(r"```python\n(?P<code>.*?)^```\n(?:\n*```text\n(?P<output>.*?)^```\n)?",
                    re.DOTALL | re.MULTILINE)


@dataclass
class Block:
    """One python block of a page: its code, the output the page shows, and where it
    starts (the line number, for messages)."""

    code: str
    expected: str | None  # None: the page has no text block after it yet
    line: int
    span: tuple[int, int]


def parse(text: str) -> list[Block]:
    """The python blocks of a Markdown page, in order."""
    return [Block(m["code"], m["output"], text.count("\n", 0, m.start()) + 1, m.span())
            for m in _BLOCK.finditer(text)]


def run(blocks: list[Block], name: str = "page") -> list[str]:
    """Execute the blocks in order in one namespace; return what each one printed.

    An exception names the block's line in the page.
    """
    if str(ROOT) not in sys.path:  # the docs use the chainrule of this checkout
        sys.path.insert(0, str(ROOT))
    namespace: dict[str, object] = {"__name__": "__docs__"}
    outputs = []
    for block in blocks:
        buffer = io.StringIO()
        code = compile(block.code, f"{name}, block at line {block.line}", "exec")
        with contextlib.redirect_stdout(buffer):
            exec(code, namespace)  # our own documentation's code, nothing from outside
        outputs.append(buffer.getvalue())
    return outputs


def render(text: str, blocks: list[Block], outputs: list[str]) -> str:
    """The page with each python block followed by a text block of its output."""
    pieces, position = [], 0
    for block, output in zip(blocks, outputs):
        start, end = block.span
        body = output if output.endswith("\n") or not output else output + "\n"
        pieces += [text[position:start], f"```python\n{block.code}```\n\n```text\n{body}```\n"]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def update(page: Path, check: bool = False) -> bool:
    """Rewrite ``page``'s outputs (or with ``check`` only compare); True if up to date."""
    text = page.read_text(encoding="utf-8")
    blocks = parse(text)
    new = render(text, blocks, run(blocks, page.name))
    if new == text:
        return True
    if not check:
        page.write_text(new, encoding="utf-8")
    return False


def update_generated(page: Path, render: Callable[[], str], check: bool = False) -> bool:
    """Rewrite a generated ``page`` (or with ``check`` only compare); True if up to date."""
    new = render()
    if page.exists() and page.read_text(encoding="utf-8") == new:
        return True
    if not check:
        page.write_text(new, encoding="utf-8")
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit with status 1 if any page is stale")
    args = parser.parse_args()
    stale = [page for page in PAGES if not update(page, check=args.check)]
    stale += [page for page, render in generated_pages().items()
              if not update_generated(page, render, check=args.check)]
    for page in stale:
        print(f"{page.relative_to(ROOT)}: " + ("stale" if args.check else "rewritten"))
    if not stale:
        print("all pages are up to date")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
