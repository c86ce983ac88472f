"""A griffe extension for the API reference: Keras-style examples as code.

anysma's docstrings follow Keras: an `Example:` line, a blank line and the
`>>>` session at the docstring's own indentation. Google-style parsing
expects section contents to be indented, so it would render those lines as
Markdown text (`>>>` becomes nested quotes). This extension wraps every
unindented doctest block (the `>>>`/`...` lines and their output, up to a
blank line) in a fenced `pycon` block and turns the `Example:` header into
plain bold text before the docstring is parsed.
"""

import re

import griffe

_HEADER = re.compile(r"^(Examples?):\s*$")


def fence_doctests(text):
    """`text` with its column-0 doctest blocks fenced; headers emboldened."""
    lines = text.splitlines()
    result = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _HEADER.match(line):
            result.append(f"**{_HEADER.match(line).group(1)}:**")
            index += 1
            continue
        if line.startswith(">>>"):
            block = []
            while index < len(lines) and lines[index].strip():
                block.append(lines[index])
                index += 1
            result += ["```pycon", *block, "```"]
            continue
        result.append(line)
        index += 1
    return "\n".join(result)


class DoctestFences(griffe.Extension):
    """Fence the doctest blocks of every docstring (see the module docstring)."""

    def on_object(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
