"""The wheel holds what the package reads: every non-Python file under ``src/galtaxa`` is package data, and the
version has one source.

``scripts/check_wheel.sh`` (``make wheel-check``, run by CI) builds and runs the wheel itself; this is the quick
check of the same rules that ``make test`` runs.
"""

import tomllib
from pathlib import Path

import galtaxa

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "galtaxa"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_non_python_file_is_package_data():
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["galtaxa"]
    covered = {path for pattern in patterns for path in PACKAGE.glob(pattern) if path.is_file()}
    files = {path for path in PACKAGE.rglob("*") if path.is_file() and path.suffix not in (".py", ".pyc")
             and "__pycache__" not in path.parts}
    missing = sorted(str(path.relative_to(PACKAGE)) for path in files - covered)
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"
    # what galtaxa reads at run time is among them: templates, the inspection app, the shipped encoder
    names = {str(path.relative_to(PACKAGE)) for path in covered}
    assert {"templates/report.html.j2", "inspect/templates/index.html", "inspect/static/app.js",
            "data/encoders/galtaxa-galaxy-v1.safetensors",
            "data/encoders/galtaxa-galaxy-v2.safetensors", "data/encoders/galtaxa-galaxy-v2.md"} <= names


def test_version_has_one_source():
    project = _pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "galtaxa._version.__version__"}
    assert galtaxa.__version__.count(".") == 2


def test_changelog_names_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{galtaxa.__version__}]" in changelog


def test_the_front_door_names_are_the_pipelines():
    import galtaxa
    from galtaxa.config import load_config
    from galtaxa.demo import run_demo
    from galtaxa.pipeline import run_pipeline

    assert galtaxa.run_pipeline is run_pipeline and galtaxa.load_config is load_config
    assert galtaxa.run_demo is run_demo
    assert set(galtaxa.__all__) >= {"run_pipeline", "load_config", "run_demo", "GalaxySet"}
