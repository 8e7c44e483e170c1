"""Running the Python examples of a Markdown document as pytest modules.

docs/testing.md and docs/guide.md promise that their examples are real. Each ```python block is
either a complete test module (run under pytest with the test kit's fixtures, every ``test_``
function counted) or a fragment (compiled, so at least its syntax is real). In docs/testing.md
every block is complete; docs/guide.md marks its complete ones with ``<!-- example: complete
-->`` on the line before the block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The ini of the SDK's own tests, for pytester runs of generated modules.
PYTESTER_INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
COMPLETE_MARK = "<!-- example: complete -->"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", flags=re.DOTALL | re.MULTILINE)
_TEST = re.compile(r"^(?:async )?def test_", flags=re.MULTILINE)


@dataclass(frozen=True)
class Example:
    """One ```python block of a document."""

    code: str
    line: int  # 1-based line of the opening fence
    complete: bool  # marked as a complete module

    @property
    def tests(self) -> int:
        return len(_TEST.findall(self.code))


def python_examples(doc: Path) -> list[Example]:
    """Every ```python block of ``doc``, in order."""
    text = doc.read_text(encoding="utf-8")
    examples = []
    for match in _BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        examples.append(
            Example(
                code=match.group(1),
                line=text.count("\n", 0, match.start()) + 1,
                complete=before.strip() == COMPLETE_MARK,
            )
        )
    return examples


def run_examples(pytester: pytest.Pytester, examples: list[Example], prefix: str) -> int:
    """Run ``examples`` as test modules in ``pytester``; every test must pass.

    Returns the number of tests that ran. Modules are named after the document line of their
    block, so a failure points at the example.
    """
    modules = {f"test_{prefix}_line{e.line}": e.code for e in examples}
    pytester.makepyfile(**modules)
    pytester.makeini(PYTESTER_INI)
    result = pytester.runpytest("-p", "no:cacheprovider")
    tests = sum(e.tests for e in examples)
    result.assert_outcomes(passed=tests)
    return tests
