"""Sphinx configuration of galtaxa's documentation site (``make docs``: warnings are errors).

The pages are Markdown (MyST); the API reference comes from the numpydoc docstrings (autodoc + numpydoc); the
config and command-line references are generated at build time from the code itself (``_ext/galtaxa_docs.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
# the checkout's package when galtaxa is not installed (an installed galtaxa, e.g. `make docs`' editable one, wins)
try:
    import galtaxa  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(HERE.parent / "src"))
    import galtaxa  # noqa: F401

os.environ.setdefault("GALTAXA_PROGRESS", "0")

project = "galtaxa"
author = "galtaxa developers"
copyright = "galtaxa developers"
release = galtaxa.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "galtaxa_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# MyST: `:::` fences for directives, $...$ maths off (dollar signs appear in shell snippets), heading anchors for
# links such as [the run folder](getting-started.md#the-run-folder)
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc + numpydoc: the public names of each package (its __all__), documented once, where users import them
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"          # the numpydoc "Parameters" sections carry the types
autodoc_preserve_defaults = True    # signatures show `seed=0`, not the repr of a computed default
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False  # methods are documented by autodoc's members, not an autosummary table
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()  # checked by tests/project/test_conventions.py instead

html_theme = "furo"
html_title = f"galtaxa {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
