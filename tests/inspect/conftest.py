"""Fixtures of the inspection app's tests: a small run folder and a test client on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from _inspect_run import build_run


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return build_run(tmp_path / "run")


@pytest.fixture
def client(run_dir):
    from galtaxa.inspect import create_app

    app = create_app(run_dir, inspector="alice")
    app.testing = True
    return app.test_client()


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The fast demo's run folder (`run_demo(fast=True)`: 84 galaxies, measured, clustered, classes by the
    simulation-truth inspector), written once per session; the tests that use it change it in order."""
    from galtaxa.demo import run_demo

    out = tmp_path_factory.mktemp("demo") / "galtaxa-demo"
    run_demo(out=out, fast=True, progress=False)
    return out
