"""The Python code blocks of the documentation pages run and print what they say.

Each page's ```python blocks run in order in one namespace, in a scratch
folder, once (on JAX, like the docstring examples in scripts/test.sh).
"""

import contextlib
import io
import os
import re

import keras
import pytest

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def pages():
    """The Markdown pages of docs/ itself (not the folders linked into it)."""
    found = []
    for folder, folders, files in os.walk(DOCS):
        folders[:] = [
            name for name in folders if not os.path.islink(os.path.join(folder, name))
        ]
        found += [
            os.path.relpath(os.path.join(folder, name), DOCS)
            for name in files
            if name.endswith(".md")
        ]
    return sorted(found)


def test_the_pages_are_found():
    assert {"index.md", "concepts.md", "guides/lvq.md", "migration.md"} <= set(pages())


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the guides run once, on JAX"
)
@pytest.mark.parametrize(
    "page",
    [page for page in pages() if page.startswith(("index", "concepts", "guides"))],
)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    with open(os.path.join(DOCS, page), encoding="utf-8") as stream:
        blocks = BLOCK.findall(stream.read())
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    namespace = {"__name__": "__docs__"}
    output = io.StringIO()
    for number, block in enumerate(blocks, start=1):
        with contextlib.redirect_stdout(output):
            exec(compile(block, f"{page}, block {number}", "exec"), namespace)
    printed = output.getvalue()
    # What the pages promise in their comments.
    expected = {
        "index.md": lambda: float(printed.split()[-1]) > 0.95,
        "concepts.md": lambda: "(None, 3)" in printed,
        "guides/lvq.md": lambda: (
            printed.startswith("[0 1]") or printed.startswith("[1 0]")
        ),
        "guides/capsules.md": lambda: "(None, 10)" in printed,
        "guides/cbc.md": lambda: printed.startswith("True\n(None, 10)\n(6, 3)"),
        "guides/self_attention_routing.md": lambda: (
            printed.split() == ["(None,", "10)", "(None,", "10)", "161824"]
        ),
        "guides/em_routing.md": lambda: (
            printed.split() == ["(None,", "10)", "0.9", "(None,", "10)"]
        ),
        "guides/sklearn.md": lambda: "(4, 4)" in printed,
        "guides/saving.md": lambda: printed.strip() == "True",
        "guides/trust.md": lambda: printed.strip().endswith("True"),
        "guides/experiments.md": lambda: printed.strip() == "1.0",
        "guides/distribution.md": lambda: (
            printed.split() == ["(197,", "3)", "(24,", "4)"]
        ),
    }
    if page in expected:
        assert expected[page](), printed
