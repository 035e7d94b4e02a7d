"""Generated blocks in Markdown files: ``<!-- name:start -->`` ... ``<!-- name:end -->``.

How the tables in README.md and docs/ are refreshed (results, speed, notebooks, vs-keras).
"""

from __future__ import annotations

from pathlib import Path

from vaeclust_tutorial.files import atomic_write_bytes


def replace_between_markers(path: str | Path, name: str, text: str) -> None:
    """Replace what lies between ``<!-- name:start -->`` and ``<!-- name:end -->`` in a text file.

    Raises ``ValueError`` naming the missing marker; the file is written atomically.
    """
    path = Path(path)
    content = path.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in content or end not in content:
        raise ValueError(f"{path} lacks the markers {start} ... {end}; add them where the table belongs")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    atomic_write_bytes(path, f"{head}{start}\n{text.strip()}\n{end}{tail}".encode())


def read_between_markers(path: str | Path, name: str) -> str:
    """What lies between the markers (stripped): what the tests compare with a freshly generated block."""
    path = Path(path)
    content = path.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in content or end not in content:
        raise ValueError(f"{path} lacks the markers {start} ... {end}")
    return content.split(start, 1)[1].split(end, 1)[0].strip()
