"""What the command line prints when it fails: exactly one line, naming the problem, never a traceback."""

from __future__ import annotations


def one_line_error(capsys, *words) -> str:
    """The single line ``galtaxa ...`` on stderr (no traceback, nothing else), holding each of ``words``."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("galtaxa "), err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]
