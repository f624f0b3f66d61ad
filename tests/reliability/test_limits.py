"""Hangs and memory: a config, a setting or a file that would take the machine's memory is refused first.

The cases of the second reliability pass: a YAML alias bomb inside an accepted key (``supervised.label_map``,
``supervised.prior``) hung ``galtaxa run`` at 7.5 GB while the config was serialised; ``conditioning.size:
30000`` on 16 images was killed by the kernel at 22.8 GB with no message.  Now the expanded size of a config is
bounded, and the memory a conditioning size needs is estimated before any galaxy is read and refused with the
figures.  (Model files: ``test_model_files.py``.)
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml
from astropy.io import fits

from _cli_errors import one_line_error

from galtaxa.cli import main
from galtaxa.config import ConfigError, load_config, validate_config
from galtaxa.preprocess import Conditioner
from galtaxa.utils import rundir

_BOMB = """\
run_dir: {run}
input: {{path: {data}}}
supervised:
  {key}:
    a: &a [x, x, x, x, x, x, x, x, x, x]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.fixture
def stamps(tmp_path):
    """16 small FITS galaxies."""
    d = tmp_path / "stamps"
    d.mkdir()
    yy, xx = np.mgrid[:24, :24] - 11.5
    for k in range(16):
        img = 300 * np.exp(-np.hypot(xx, yy) / 3) + np.random.default_rng(k).normal(1000, 5, (24, 24))
        fits.PrimaryHDU(img.astype(np.float32)).writeto(d / f"g{k:02d}.fits")
    return d


# ------------------------------------------------------------------ configs
@pytest.mark.parametrize("key", ["label_map", "prior"])
def test_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys, key):
    path = tmp_path / "bomb.yaml"
    path.write_text(_BOMB.format(run=tmp_path / "run", data=tmp_path, key=key))
    start = time.perf_counter()
    assert main(["run", str(path)]) == 2
    assert time.perf_counter() - start < 10
    one_line_error(capsys, "bomb.yaml expands to more than 100,000 values", "YAML anchors and aliases")
    assert not (tmp_path / "run").exists()


def test_alias_bomb_given_from_python_is_refused_too():
    a = ["x"] * 10
    for _ in range(8):
        a = [a] * 10  # the same list 10 times at each level: 10^9 values once expanded
    with pytest.raises(ConfigError, match="expands to more than 100,000 values"):
        validate_config({"supervised": {"label_map": {"a": a}}})


def test_self_referencing_alias_and_deep_nesting_are_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("supervised:\n  label_map:\n    a: &a [x, *a]\n")
    with pytest.raises(ConfigError, match=r"loop\.yaml is nested more than 32 levels deep \(or an alias refers to "
                                          "itself\\)"):
        load_config(path)
    path.write_text("supervised:\n  label_map: " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError, match=r"loop\.yaml is nested too deeply to be read"):
        load_config(path)


def test_config_file_that_is_not_a_small_utf8_file(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (5 * 2**20) + "\nseed: 1\n")
    with pytest.raises(ConfigError, match=r"big\.yaml is 5,242,891 bytes; a galtaxa config is a few KB"):
        load_config(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("seed: 1\nrun_dir: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.yaml: line 2 is not UTF-8 \(byte 0xe9\)"):
        load_config(latin)
    (tmp_path / "folder.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"folder\.yaml is a folder"):
        load_config(tmp_path / "folder.yaml")
    bom = tmp_path / "bom.yaml"
    bom.write_bytes("\ufeffseed: 3\n".encode())  # an editor's byte-order mark is fine
    assert load_config(bom)["seed"] == 3


# ------------------------------------------------------------------ memory needed by a setting
def test_conditioning_size_that_cannot_fit_is_refused_with_the_figure(tmp_path, stamps, capsys, monkeypatch):
    monkeypatch.setattr(rundir, "available_memory", lambda: 8 * 2**30)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "input": {"path": str(stamps)},
                                   "conditioning": {"size": 30000}, "measure": {"enabled": False},
                                   "report": {"enabled": False}}))
    start = time.perf_counter()
    assert main(["measure", str(cfg)]) == 2
    assert time.perf_counter() - start < 30
    line = one_line_error(capsys, "conditioning.size 30000: conditioning one galaxy (1 channel(s) of 30000x30000 px) "
                             "needs about 33.5 GiB of memory, but 8.0 GiB are available",
                     "lower conditioning.size")
    assert "Traceback" not in line
    assert not list((tmp_path / "run").rglob("images.npy"))
    # a size that fits goes through on the same input
    cfg.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "input": {"path": str(stamps)},
                                   "conditioning": {"size": 16}, "measure": {"enabled": False},
                                   "report": {"enabled": False}}))
    assert main(["measure", str(cfg)]) == 0


def test_memory_estimate_bounds_the_measured_peak():
    """The factor of Conditioner.memory_needed covers what tracemalloc measures for every scaling."""
    import tracemalloc

    yy, xx = np.mgrid[:40, :40] - 19.5
    img = (300 * np.exp(-np.hypot(xx, yy) / 3) + np.random.default_rng(0).normal(1000, 5, (3, 40, 40)))
    img = img.astype(np.float32)
    for scaling in ("asinh", "zscore", "lupton", "log"):
        cond = Conditioner(size=400, geometry="crop_resize", crop_fraction=0.5, background="sigma_clip",
                           scaling=scaling)
        cond(img)  # once first: imports and caches are one-off, not per galaxy
        tracemalloc.start()
        cond(img)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= cond.memory_needed(3), (scaling, peak, cond.memory_needed(3))
        assert cond.memory_needed(3) < 2.5 * peak, (scaling, peak)  # and does not overstate it much


def test_input_npz_whose_header_claims_terabytes_is_refused_before_loading(tmp_path, capsys):
    import io
    import zipfile

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False,
                                                "shape": (2**20, 1024, 1024)})
    with zipfile.ZipFile(tmp_path / "cutouts.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("images.npy", head.getvalue() + bytes(4096))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "input": {"path": str(tmp_path / "cutouts.npz")}}))
    assert main(["measure", str(cfg)]) == 2
    one_line_error(capsys, "cutouts.npz: array 'images' claims shape (1048576, 1024, 1024) of float32 (4.0 TiB) but its "
                      "member holds 4.0 KiB")
