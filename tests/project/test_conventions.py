"""The project's conventions, checked: ruff and numpydoc's docstring validation (configured in pyproject.toml),
and status strings only from :mod:`galtaxa.status`."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from galtaxa.status import NOT_RUN, STATUSES


REPO = Path(__file__).resolve().parents[2]


SRC = REPO / "src" / "galtaxa"


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_passes():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    res = _run([ruff, "check", "src", "tests", "benchmarks"])
    assert res.returncode == 0, res.stdout + res.stderr


def test_numpydoc_validation_passes():
    pytest.importorskip("numpydoc", reason="numpydoc is not installed (pip install -e '.[test]')")
    files = sorted(str(p.relative_to(REPO)) for p in SRC.rglob("*.py"))
    res = _run([sys.executable, "-m", "numpydoc", "lint", *files])
    assert res.returncode == 0, res.stdout[-5000:]


def _status_constants(path: Path) -> list[tuple[int, str]]:
    """String constants equal to a status outside docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    statuses = set(STATUSES) | {NOT_RUN}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in statuses
            and id(node) not in docstrings]


#: Not checked yet: code that still types statuses by hand, for its owners to convert (supervise/classifier.py,
#: the predict command, the inspect app), and label/mapping.py, whose tie rule "unclassified" is a rule name
#: that happens to equal the status.
NOT_CHECKED = {"supervise", "inspect", "commands/train.py", "label/mapping.py"}


def test_status_strings_come_from_status_py():
    def checked(p: Path) -> bool:
        rel = p.relative_to(SRC)
        return p.name != "status.py" and rel.parts[0] not in NOT_CHECKED and str(rel) not in NOT_CHECKED

    found = {str(p.relative_to(SRC)): hits for p in sorted(SRC.rglob("*.py")) if checked(p)
             and (hits := _status_constants(p))}
    assert not found, f"status strings typed by hand (use galtaxa.status): {found}"


def test_public_names_mean_one_thing():
    """Each public name of the stage packages is public in one of them only."""
    import importlib

    seen: dict[str, str] = {}
    for name in ("galtaxa.cluster", "galtaxa.io", "galtaxa.label", "galtaxa.preprocess", "galtaxa.catalog"):
        pkg = importlib.import_module(name)
        for public in pkg.__all__:
            assert public not in seen, f"{public} is public in {seen.get(public)} and {name}"
            seen[public] = name


def test_every_command_line_argument_has_help():
    """``galtaxa COMMAND --help`` explains every argument and option (the issue found four without)."""
    import argparse

    from galtaxa.cli import build_parser

    missing = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [f"{name} {a.option_strings or a.dest}" for a in sub._actions
                            if not a.help and not isinstance(a, argparse._HelpAction)]
    assert not missing


#: Calls that write a file: methods of paths, tables, figures and FITS objects, and numpy's savers.  (An
#: estimator's ``save`` is :class:`galtaxa.persist.archive.Persistable`'s, atomic itself.)
WRITE_METHODS = {"write_text", "write_bytes", "to_csv", "to_parquet", "to_json", "to_hdf", "savefig", "writeto"}


NUMPY_SAVERS = {"save", "savez", "savez_compressed", "savetxt"}


#: Writes that replace no file and need no atomicity: (file, the call's target) -> why.
NOT_ATOMIC = {
    ("utils/rundir.py", "probe"): "an empty probe file that tells whether the folder is writable, removed at once",
}


def _names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _raw_writes(path: Path) -> list[str]:
    """Writes in ``path`` whose target is neither a name bound by an enclosing ``with`` (the temporary file of
    :func:`galtaxa.utils.atomic.atomic_path`, an open file), an in-memory buffer (``buf``), nor a file in a stage
    folder (``st.path``: the folder is written whole, then marked finished, :meth:`galtaxa.cache.Stage.run`)."""
    rel = path.relative_to(SRC).as_posix()
    found = []

    def visit(node, bound: set[str]) -> None:
        for child in ast.iter_child_nodes(node):
            inner = set(bound)
            if isinstance(child, (ast.With, ast.AsyncWith)):
                inner |= {n for item in child.items if item.optional_vars is not None
                          for n in _names(item.optional_vars)}
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                attr, owner = child.func.attr, child.func.value
                numpy = attr in NUMPY_SAVERS and isinstance(owner, ast.Name) and owner.id in ("np", "numpy")
                if attr in WRITE_METHODS or numpy:
                    target = owner if attr in ("write_text", "write_bytes") or not child.args else child.args[0]
                    text = ast.unparse(target)
                    if not (_names(target) & (inner | {"buf"}) or "st.path" in text or (rel, text) in NOT_ATOMIC):
                        found.append(f"src/galtaxa/{rel}:{child.lineno}: {ast.unparse(child)[:100]}")
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), set())
    return found


def test_every_write_is_atomic():
    """Files are written to a temporary name and renamed (:mod:`galtaxa.utils.atomic`), so that an interrupted
    write never leaves half a file under the real name."""
    found = [w for p in sorted(SRC.rglob("*.py")) for w in _raw_writes(p)]
    assert not found, "writes that are not atomic (use galtaxa.utils.atomic):\n" + "\n".join(found)


def test_the_atomic_write_check_finds_raw_writes(tmp_path, monkeypatch):
    """The check above flags a direct write and accepts the same write through atomic_path."""
    src = tmp_path / "galtaxa"
    src.mkdir()
    (src / "bad.py").write_text("def f(df, out):\n    df.to_csv(out / 'a.csv')\n    (out / 'b.json').write_text('x')\n")
    (src / "good.py").write_text("def f(df, out):\n    with atomic_path(out / 'a.csv') as tmp:\n"
                                 "        df.to_csv(tmp)\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", src)
    assert [w.split(":")[1] for w in _raw_writes(src / "bad.py")] == ["2", "3"]
    assert _raw_writes(src / "good.py") == []
