"""Property-based robustness of the command line and the inspection app against what a user may write.

Hypothesis feeds random config values, random catalog cells and random inspector-file contents (and JSON bodies)
and checks the contract of the reliability issues:

* no traceback: ``galtaxa`` returns 0 or 2 and prints ``galtaxa CMD: error: ...`` when it refuses;
* no HTTP 500: every route of the app answers below 500, and the app keeps serving;
* no hang: every example runs under an alarm of :data:`BOUND_S` seconds;
* no file outside the run folder touched: each example runs in a fresh sandbox (its own working folder and
  ``HOME``), and afterwards only the config and the run folder are new there; the input files are unchanged;
* every input id accounted for: a run that succeeds has one catalog row per input row.

Examples are few and derandomized (the whole module runs in well under a minute on 2 cores); the stages after the
read stage are off (``galtaxa measure`` with ``measure.enabled: false``), and ``compute`` (which starts Dask
clusters) is left out of the random keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import signal
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from galtaxa.catalog import read_catalog
from galtaxa.cli import main
from galtaxa.config import DEFAULTS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inspect"))
from _inspect_run import build_run  # noqa: E402

BOUND_S = 60
FEW = settings(max_examples=20, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.filter_too_much])


class Hang(Exception):
    pass


@contextlib.contextmanager
def bounded(seconds=BOUND_S):
    """Fail the example (instead of hanging the suite) when it runs past ``seconds``."""
    def alarm(signum, frame):
        raise Hang(f"example ran past {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def stamps(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz") / "stamps"
    d.mkdir()
    yy, xx = np.mgrid[:24, :24] - 11.5
    for k in range(4):
        img = 300 * np.exp(-np.hypot(xx, yy) / (2 + k)) + np.random.default_rng(k).normal(1000, 5, (24, 24))
        fits.PrimaryHDU(img.astype(np.float32)).writeto(d / f"g{k}.fits")
    return d


def run_cli(argv, sandbox: Path) -> tuple[int, str]:
    """``galtaxa ARGV`` in ``sandbox`` (working folder and HOME), bounded; (exit code, stderr)."""
    err = io.StringIO()
    cwd, home = os.getcwd(), os.environ.get("HOME")
    os.chdir(sandbox)
    os.environ["HOME"] = str(sandbox / "home")
    try:
        with bounded(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rc = main(argv)
    finally:
        os.chdir(cwd)
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home
    return rc, err.getvalue()


def check_outcome(rc, err, command):
    event(f"exit {rc}")
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in err, err
    if rc == 2:
        assert f"galtaxa {command}: error: " in err, err


def check_sandbox(sandbox: Path, allowed=("cfg.yaml", "run", "home", "cat")):
    extra = sorted(p.name for p in sandbox.iterdir() if p.name not in allowed)
    assert extra == [], f"files written outside the run folder: {extra}"
    assert not any((sandbox / "home").iterdir()), list((sandbox / "home").iterdir())


# ------------------------------------------------------------------ random values
_weird_text = st.sampled_from(["", " ", "~", "~/x", "$HOME", "$GALTAXA_UNSET_VAR/x", "..", "/", "/dev/null",
                               "/etc/passwd", "a\nb", "a\rb", "=1+2", "@x", "é", "\u2028", "NaN", "null", "auto",
                               "x" * 300])
_numbers = st.one_of(st.integers(-3, 40), st.sampled_from([2**31, 2**63, 2**64 + 1, -2**70, 10**30]),
                     st.floats(allow_nan=True, allow_infinity=True, width=32))
_scalars = st.one_of(st.none(), st.booleans(), _numbers, _weird_text, st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                       max_leaves=8)
_KEYS = [(section, key) for section, keys in DEFAULTS.items() if isinstance(keys, dict) and section != "compute"
         for key in keys] + [("", k) for k in ("seed", "route")]


def _plausible(default):
    """Values of the default's own type, often valid: the default, small numbers, the other choices' look."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.one_of(st.just(default), st.integers(0, 64))
    if isinstance(default, float):
        return st.one_of(st.just(default), st.floats(0.001, 1.0))
    return st.just(default)


@st.composite
def random_configs(draw):
    picks = draw(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=3, unique=True))
    cfg: dict = {}
    for section, key in picks:
        default = DEFAULTS[section][key] if section else DEFAULTS[key]
        value = draw(_values) if draw(st.booleans()) else draw(_plausible(default))
        if section:
            cfg.setdefault(section, {})[key] = value
        else:
            cfg[key] = value
    if draw(st.integers(0, 4)) == 0:  # an unknown key or a section that is not a mapping now and then
        cfg[draw(st.sampled_from(["unknown", "conditioning", "input"]))] = draw(_scalars)
    return cfg


@settings(FEW, max_examples=40)  # most examples stop at validation: fast
@given(cfg=random_configs(), raw=st.one_of(st.none(), st.none(), st.none(), st.text(max_size=60)))
def test_random_config_values_never_crash(stamps, cfg, raw):
    before = _digest(stamps)
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        (sandbox / "home").mkdir()
        base = {"run_dir": str(sandbox / "run"), "input": {"path": str(stamps)},
                "measure": {"enabled": False}, "report": {"enabled": False}, "conditioning": {"size": 16}}
        for key, value in cfg.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        if isinstance(base.get("measure"), dict):
            base["measure"]["enabled"] = False  # the read stage only: fast
        base["run_dir"] = str(sandbox / "run")
        try:
            text = yaml.safe_dump(base, allow_unicode=True) if raw is None else raw
        except yaml.YAMLError:
            return
        (sandbox / "cfg.yaml").write_text(text, encoding="utf-8")
        rc, err = run_cli(["measure", str(sandbox / "cfg.yaml")], sandbox)
        check_outcome(rc, err, "measure")
        # a raw text that reads as an empty config names the default run folder, galtaxa-run
        check_sandbox(sandbox, allowed=("cfg.yaml", "run", "home") + (("galtaxa-run",) if raw is not None else ()))
        if rc == 0:
            cat = read_catalog(sandbox / "run" / "catalog.parquet")[0]
            assert sorted(cat["id"]) == [f"g{k}" for k in range(4)]
    assert _digest(stamps) == before


# ------------------------------------------------------------------ random catalog cells
_cells = st.one_of(st.sampled_from(["g0.fits", "g1.fits", "g2.fits", "g3.fits", "", " ", "NA", "nan",
                                    "missing.fits", "../stamps/g0.fits", "/dev/zero", "/dev/stdin", "/", ".",
                                    "sub", "g0.fits\n", "=cmd|' /C calc'!A0", "-1", "\r", "é.fits"]),
                   st.text(max_size=10))


_files = st.one_of(st.sampled_from(["g0.fits", "g1.fits", "g2.fits", "g3.fits"]), _cells)


@FEW
@given(rows=st.lists(st.tuples(_cells, _files, st.one_of(_numbers, _weird_text)), min_size=1, max_size=6),
       raw=st.booleans())
def test_random_catalog_cells_account_for_every_row(stamps, rows, raw):
    before = _digest(stamps)
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        (sandbox / "home").mkdir()
        cat_dir = sandbox / "cat"
        cat_dir.mkdir()
        for f in stamps.iterdir():
            (cat_dir / f.name).write_bytes(f.read_bytes())
        (cat_dir / "sub").mkdir()
        table = pd.DataFrame(rows, columns=["id_str", "file_loc", "extra"])
        if raw:  # cells joined by hand: quotes, commas and line breaks as they come
            text = "id_str,file_loc,extra\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
            (cat_dir / "cat.csv").write_text(text, encoding="utf-8")
        else:
            table.to_csv(cat_dir / "cat.csv", index=False, lineterminator="\r\n")  # a CR in a cell is quoted
        (sandbox / "cfg.yaml").write_text(yaml.safe_dump({
            "run_dir": str(sandbox / "run"), "input": {"path": str(cat_dir / "cat.csv")},
            "measure": {"enabled": False}, "report": {"enabled": False}, "conditioning": {"size": 16}}))
        rc, err = run_cli(["measure", str(sandbox / "cfg.yaml")], sandbox)
        check_outcome(rc, err, "measure")
        check_sandbox(sandbox)
        if rc == 0:
            cat, _ = read_catalog(sandbox / "run" / "catalog.parquet")
            if not raw:
                assert len(cat) == len(rows)  # every input row is a catalog row, with a status
            assert cat["id"].is_unique and "nan" not in set(cat["id"]) - {str(r[0]) for r in rows}
            assert set(cat["status"]) <= {"ok", "bad_input"}
            assert (cat.loc[cat["status"] != "ok", "reason"] != "").all()
            for fmt in ("csv", "fits"):
                assert read_catalog(sandbox / "run" / f"catalog.{fmt}")[0]["id"].tolist() == cat["id"].tolist()
    assert _digest(stamps) == before


# ------------------------------------------------------------------ random inspector files and requests
@pytest.fixture(scope="module")
def inspect_run(tmp_path_factory):
    return build_run(tmp_path_factory.mktemp("fuzz_inspect") / "run", n=16, pixels=False)


_file_bytes = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    st.lists(st.tuples(st.sampled_from(["gal-000", "gal-001", "x", "", "=1", "\ufeffid"]),
                       st.sampled_from(["SPH", "ETD", "", "??", "0", "-1"]),
                       st.text(max_size=8), st.text(max_size=8), st.text(max_size=8)), max_size=5)
    .map(lambda rows: ("id,class,flags,inspector,time\n" + "".join(",".join(r) + "\n" for r in rows)).encode()),
    st.lists(st.tuples(st.sampled_from(["0", "1", "x", "", "-1", "99"]), st.text(max_size=8), st.text(max_size=8)),
             max_size=5)
    .map(lambda rows: ("group,inspector,comment,time\n" + "".join(",".join(r) + ",t\n" for r in rows)).encode()),
)
_json = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.text(max_size=10),
                               st.floats(allow_nan=False)),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.dictionaries(st.sampled_from(["inspector", "group", "class", "id",
                                                                              "flags", "comment", "x"]), inner,
                                                             max_size=5)),
                     max_leaves=10)
_ROUTES = ["/api/run", "/api/labels", "/api/votes", "/api/queue", "/api/queue?limit=x", "/api/galaxy/0",
           "/api/galaxy/999", "/api/groups/0", "/api/groups/-1", "/img/0.png", "/mosaic/0.png",
           "/files/report/report.html", "/files/../../etc/passwd", "/files/mapping.yaml"]


@FEW
@given(labels=_file_bytes, comments=_file_bytes, mapping=st.one_of(st.none(), st.text(max_size=120)),
       bodies=st.lists(st.tuples(st.sampled_from(["/api/vote", "/api/comment", "/api/label"]),
                                 st.one_of(_json, st.text(max_size=30))), max_size=4))
def test_random_inspector_files_and_requests_never_give_a_500(inspect_run, labels, comments, mapping, bodies):
    from galtaxa.inspect import create_app

    run = inspect_run
    original_mapping = (run / "mapping.yaml").read_bytes() if (run / "mapping.yaml").exists() else None
    (run / "labels_inspected.csv").write_bytes(labels)
    (run / "group_comments.csv").write_bytes(comments)
    if mapping is not None:
        (run / "mapping.yaml").write_text(mapping, encoding="utf-8")
    outside = _digest(run.parent)
    try:
        with bounded(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            app = create_app(run, inspector="fuzz")
            app.testing = False
            client = app.test_client()
            for url in _ROUTES:
                r = client.get(url)
                assert r.status_code < 500, (url, r.status_code, r.data[:300])
            for url, body in bodies:
                data = body if isinstance(body, str) else json.dumps(body)
                r = client.post(url, data=data, content_type="application/json")
                assert r.status_code < 500, (url, body, r.status_code, r.data[:300])
            assert client.get("/api/run").status_code == 200  # still serving
        changed = {k for k, v in _digest(run.parent).items() if outside.get(k) != v}
        allowed = {f"run/{n}" for n in ("labels_inspected.csv", "group_comments.csv", "mapping.yaml", ".inspect.lock",
                                        ".galtaxa-manifest.jsonl")}
        assert changed <= allowed, changed - allowed
    finally:
        for name in ("labels_inspected.csv", "group_comments.csv"):
            (run / name).unlink(missing_ok=True)
        if original_mapping is not None:
            (run / "mapping.yaml").write_bytes(original_mapping)


def test_bound_catches_a_hang():
    with pytest.raises(Hang):
        with bounded(1):
            while True:
                math.sqrt(2.0)
