"""The import graph of galtaxa, read from the source with :mod:`ast` (nothing is imported), and its files' sizes.

* No circle: no module reaches itself through imports, counting the imports inside functions.
* Every import goes down the layers of :data:`LAYERS` (or stays in its layer).
* Imports sit at the top of their file, except those allowed, with the measured reason, by :data:`DEFERRED`,
  :data:`LAZY_COMMANDS` and :data:`LAZY_PAIRS` (numbers: ``benchmarks/results/startup.md``), each with a
  ``# lazy: WHY`` comment; the command line's own start (``galtaxa --help``) loads none of the library.
* No source file has more than :data:`MAX_LINES` lines (one job per module).

``python -m pytest tests/project/test_architecture.py -q`` prints each offending import with its file and line.
"""

from __future__ import annotations

import ast
import re
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

#: The imports that may stay inside functions (issue 26: "imports at the top of files unless there is a measured
#: reason").  Each number is measured by ``benchmarks/startup.py`` (``benchmarks/results/startup.md``: seconds of an
#: ``import`` in a fresh process on two CPU cores shared with other jobs (load 4.5), median of 5).  Anything else goes
#: at the top of its file; a kept import carries a ``# lazy: WHY`` comment on the first lazy import of its function
#: (:func:`lazy_import_problems`), and an entry no import uses any more is removed
#: (:func:`test_every_lazy_allowance_is_used`).
#:
#: Third-party packages (the first name of the import): optional extras, or seconds to import that a module
#: using them in only some functions spares its other callers.  Allowed only where importing the module does not
#: load the package anyway (:data:`LOADED`).
DEFERRED: dict[str, str] = {
    "torch": "1.5 s; 1.3 s more than galtaxa.persist (archive, safe_load), 1.4 s more than the inspection app "
             "(galtaxa.inspect, which imports galtaxa.persist)",
    "timm": "3.1 s; 1.5 s more than galtaxa.encode (torch): only building a model needs it, not galtaxa measure, "
            "report, validate",
    "umap": "2.2 s (numba); 0.8 s more than galtaxa.pipeline: only UMAPReducer and the report's UMAP map need it",
    "photutils": "1.1 s; 0.5 s more than galtaxa.preprocess (the conditioning, imported by galtaxa.encode, "
                 "supervise, taxonomy): only the 2-D background needs it",
    "distributed": "optional extra (pip install 'galtaxa[dask]'): the default local scheduler runs without it",
}

#: galtaxa's own modules that the command line (galtaxa.cli, galtaxa.commands.*) imports inside its handlers, so
#: that ``galtaxa --help`` (0.4-0.5 s; 9.4 s with every import at the top) and the cheap commands do not load the
#: library: module (or package) -> what importing it costs once ``galtaxa.cli`` is loaded.  The command line's
#: top-level imports must load none of them (:func:`test_the_command_line_loads_no_library_at_start`).
LAZY_COMMANDS: dict[str, str] = {
    "galtaxa.pipeline": "4.1 s (torch, scikit-learn, statmorph, photutils, matplotlib)",
    "galtaxa.supervise": "3.3 s (torch, scikit-learn, matplotlib)",
    "galtaxa.taxonomy": "3.0 s (torch, scikit-learn, matplotlib)",
    "galtaxa.demo": "4.2 s (the pipeline, GalSim)",
    "galtaxa.encode": "1.4 s (torch)",
    "galtaxa.inspect": "0.6 s (astropy, scipy)",
    "galtaxa.io": "0.5 s (astropy, scipy)",
    "galtaxa.catalog": "0.4 s (astropy)",
    "galtaxa.config": "0.05 s (yaml, tqdm), a tenth of galtaxa --help",
}

#: The other imports of galtaxa modules inside functions: (importer, imported) -> what importing it would cost.
LAZY_PAIRS: dict[tuple[str, str], str] = {
    ("galtaxa.config", "galtaxa.validation.spec"): "scikit-learn, 1.8 s more than galtaxa.config for every config "
                                                   "read (a bad config is reported before the library loads); only "
                                                   "a config with a validation section needs it",
    ("galtaxa.config", "galtaxa.cluster.gmm"): "scikit-learn, 1.2 s more than galtaxa.config for every config read",
    ("galtaxa.analysis.consistency", "galtaxa.measure.trust"): "statmorph and photutils: 1.2 s more than "
                                                               "galtaxa.analysis, 0.6-0.7 s more than "
                                                               "galtaxa.supervise or galtaxa.validation; only the "
                                                               "report's trust check needs it",
    ("galtaxa.inspect.images", "galtaxa.taxonomy.polar"): "torch and scikit-learn, 3.1 s more than "
                                                            "galtaxa.inspect at the inspection app's start; only "
                                                            "the polar view needs it",
}

#: The modules of the command line, where :data:`LAZY_COMMANDS` apply.
COMMAND_LINE = ("galtaxa.cli", "galtaxa.commands")


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


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool | None = None) -> list[str]:
    """galtaxa modules that an import statement of ``module`` loads (a submodule named in ``from PKG import sub``
    is the submodule, not ``PKG``); ``is_package``: whether ``module`` is a package's ``__init__`` (default: read
    from :data:`MODULES`)."""
    if isinstance(node, ast.Import):
        return [t for a in node.names if a.name.startswith(PACKAGE) and (t := _known(a.name))]
    if node.level:
        base = module.split(".")
        if not (MODULES[module].name == "__init__.py" if is_package is None else is_package):
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


def _lazy_command_import(target: str) -> bool:
    return any(target == m or target.startswith(m + ".") for m in LAZY_COMMANDS)


def deferral_ok(module: str, target: str, top: str, loaded: set[str] | None = None) -> bool:
    """True when an import of ``target`` (a galtaxa module) or of package ``top`` may stay inside a function of
    ``module``: a listed dependency that importing ``module`` does not load anyway (``loaded``: default
    :data:`LOADED` of ``module``), or a listed galtaxa import."""
    if target:
        return ((module.startswith(COMMAND_LINE) and _lazy_command_import(target))
                or (module, target) in LAZY_PAIRS)
    return top in DEFERRED and top not in (LOADED[module] if loaded is None else loaded)


def lazy_import_problems(module: str, source: str, is_package: bool = False) -> list[str]:
    """What is wrong with the imports inside functions of ``source``, the text of galtaxa module ``module``.

    An import inside a function must be allowed by :func:`deferral_ok` (with the packages that the module's own
    top-level imports load, and those of the modules they import), and the first such import of each function
    must say why in a ``# lazy: ...`` comment.  Each problem is one line with the line number.
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    top_level, nested = [], []  # (node, enclosing function or None)

    def visit(node, function) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (nested if function else top_level).append((child, function))
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) else function
            visit(child, inner)

    visit(tree, None)
    loaded = set()
    parts = module.split(".")
    for parent in (".".join(parts[:i]) for i in range(1, len(parts))):
        loaded |= LOADED.get(parent, set())
    for node, _ in top_level:
        targets = _targets(module, node, is_package)
        for t in targets:
            loaded |= LOADED.get(t, set())
        top = node.names[0].name if isinstance(node, ast.Import) else node.module or ""
        if not targets and not (isinstance(node, ast.ImportFrom) and node.level) and top.split(".")[0] in DEFERRED:
            loaded |= {top.split(".")[0], *IMPLIES.get(top.split(".")[0], ())}
    problems, said = [], set()
    for node, function in nested:
        targets = _targets(module, node, is_package)
        top = (node.names[0].name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        if isinstance(node, ast.ImportFrom) and node.level and not targets:
            targets = [module]  # a relative import of something that is not a galtaxa module: never deferred
        for t in dict.fromkeys(targets or [""]):
            if not deferral_ok(module, t, top, loaded):
                why = " (the module loads it anyway)" if not t and top in DEFERRED else ""
                problems.append(f"line {node.lineno}: {module} imports {t or top} inside a function{why}")
        if id(function) not in said:
            said.add(id(function))
            text = "\n".join(lines[node.lineno - 1:node.end_lineno])
            if not re.search(r"#.*\blazy:", text):
                problems.append(f"line {node.lineno}: the first import inside {getattr(function, 'name', 'lambda')}"
                                f"() has no '# lazy: WHY' comment")
    return problems


def test_imports_are_at_the_top():
    problems = [f"{MODULES[m].relative_to(SRC.parent)}: {p}" for m, path in MODULES.items()
                for p in lazy_import_problems(m, path.read_text(encoding="utf-8"), path.name == "__init__.py")]
    assert not problems, ("imports inside functions without a reason listed in DEFERRED, LAZY_COMMANDS or "
                          "LAZY_PAIRS of tests/project/test_architecture.py (move them to the top of the file), or "
                          "without their '# lazy:' comment:\n" + "\n".join(problems))


def test_every_lazy_allowance_is_used():
    nested = [(a, b, top) for a, b, _, inside, top in IMPORTS if inside]
    unused = ([f"DEFERRED[{k!r}]" for k in DEFERRED if not any(not b and top == k for _, b, top in nested)]
              + [f"LAZY_COMMANDS[{k!r}]" for k in LAZY_COMMANDS
                 if not any(a.startswith(COMMAND_LINE) and (b == k or b.startswith(k + ".")) for a, b, _ in nested)]
              + [f"LAZY_PAIRS[{k!r}]" for k in LAZY_PAIRS if not any((a, b) == k for a, b, _ in nested)])
    assert not unused, "allowances no import inside a function uses any more (remove them):\n" + "\n".join(unused)


def _closure(module: str) -> set[str]:
    """The galtaxa modules that importing ``module`` loads through top-level imports (and packages' __init__)."""
    deps: dict[str, set[str]] = defaultdict(set)
    for a, b, _, inside, _ in IMPORTS:
        if b and not inside:
            deps[a].add(b)
    seen, todo = {module}, [module]
    while todo:
        m = todo.pop()
        parts = m.split(".")
        for d in deps[m] | {".".join(parts[:i]) for i in range(1, len(parts))}:
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def test_the_command_line_loads_no_library_at_start():
    """``galtaxa --help`` (galtaxa.cli and every command module, imported to build the parser) loads none of
    :data:`LAZY_COMMANDS` and no :data:`DEFERRED` package: otherwise the lazy imports of the handlers save nothing."""
    loaded = _closure("galtaxa.cli")
    heavy = sorted(m for m in loaded if _lazy_command_import(m))
    assert "galtaxa.commands.train" in loaded and not heavy, f"galtaxa.cli loads {heavy} when imported"
    assert not LOADED["galtaxa.cli"], f"galtaxa.cli loads {sorted(LOADED['galtaxa.cli'])} when imported"


# the checker itself, on made-up modules
_TORCH_TOP = "import torch\n\n\ndef f():\n    import torch  # lazy: torch\n    return torch\n"


def test_checker_refuses_a_plain_import_inside_a_function():
    assert lazy_import_problems("galtaxa.utils.fake", "def f():\n    import json  # lazy: no\n    return json\n")
    intra = "def f():\n    from ..status import OK  # lazy: cheap\n    return OK\n"
    assert lazy_import_problems("galtaxa.utils.fake", intra)
    assert lazy_import_problems("galtaxa.commands.fake", intra)  # cheap: not in LAZY_COMMANDS
    cached = "def f():\n    from .. import cache  # lazy: cheap\n    return cache\n"
    assert lazy_import_problems("galtaxa.commands.fake", cached)


def test_checker_refuses_a_deferred_package_the_module_loads_anyway():
    assert any("loads it anyway" in p for p in lazy_import_problems("galtaxa.utils.fake", _TORCH_TOP))
    via = "from ..encode import registry\n\n\ndef f():\n    import torch  # lazy: torch\n    return torch, registry\n"
    assert any("loads it anyway" in p for p in lazy_import_problems("galtaxa.io.fake", via))


def test_checker_asks_for_the_lazy_comment():
    bare = "def f():\n    import torch\n    import umap\n    return torch, umap\n"
    assert [p for p in lazy_import_problems("galtaxa.utils.fake", bare) if "comment" in p] == [
        "line 2: the first import inside f() has no '# lazy: WHY' comment"]


def test_checker_accepts_the_allowed_lazy_imports():
    ok = ("def f():\n    import torch  # lazy: torch, seconds\n    from timm.data import x\n    return torch, x\n\n\n"
          "def g():\n    try:\n        from distributed import Client  # lazy: optional extra\n"
          "    except ImportError:\n        raise\n    return Client\n")
    assert lazy_import_problems("galtaxa.utils.fake", ok) == []
    cmd = ("from .run import run_dir_argument\n\n\ndef f():\n    from ..pipeline.builders import x  # lazy: library\n"
           "    from ..config import y\n    return x, y, run_dir_argument\n")
    assert lazy_import_problems("galtaxa.commands.fake", cmd) == []
    pair = "def f():\n    from ..measure.trust import t  # lazy: statmorph\n    return t\n"
    assert lazy_import_problems("galtaxa.analysis.consistency", pair) == []
    assert lazy_import_problems("galtaxa.analysis.embedding", pair)  # the pair is for consistency only


#: The most lines a file of ``src/galtaxa`` may have.
MAX_LINES = 600


def test_no_source_file_is_over_the_line_limit():
    sizes = {path.relative_to(SRC / PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
             for path in MODULES.values()}
    over = [f"src/{PACKAGE}/{name}: {n} lines" for name, n in sorted(sizes.items())
            if n > MAX_LINES]
    assert not over, (f"source files over {MAX_LINES} lines (split them into modules of one job each):\n"
                      + "\n".join(over))
