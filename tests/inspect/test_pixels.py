"""The large view's pixel values: the native cutout read from the run's input with galtaxa's readers, the
conditioned stamp and its polar unfolding, the pixel scale, and the refusals (with their messages)."""

from __future__ import annotations

import shutil

import numpy as np
from _inspect_run import build_run, write_fits_input

from galtaxa.galaxyset import GalaxySet
from galtaxa.inspect import create_app

N = 12


def _values(resp) -> np.ndarray:
    shape = tuple(int(x) for x in resp.headers["X-Pixels-Shape"].split(","))
    assert resp.mimetype == "application/octet-stream"
    return np.frombuffer(resp.data, dtype="<f4").reshape(shape)


def _fits_run(tmp_path, config_scale=None, relative=False, pixscale=0.262):
    ids = [f"gal-{i:03d}" for i in range(N)]
    native = write_fits_input(tmp_path / "run" / "input", ids, pixscale=pixscale)
    inp = "input" if relative else str(tmp_path / "run" / "input")
    cfg = {"input": {"path": inp}}
    if config_scale is not None:
        cfg["measure"] = {"pixel_scale": config_scale}
    cols = {"pixel_scale": [pixscale] * N} if pixscale is not None else None
    run = build_run(tmp_path / "run", n=N, nasty=False, config=cfg, columns=cols)
    app = create_app(run)
    app.testing = True
    return run, native, app.test_client()


def test_native_pixels_are_the_input_cutout_read_by_galtaxas_fits_reader(tmp_path):
    run, native, client = _fits_run(tmp_path)
    for row in (0, 5, N - 1):
        r = client.get(f"/api/pixels/{row}?source=native")
        assert r.status_code == 200, r.get_json()
        got = _values(r)
        assert got.shape == (1, 40, 32)  # native size, not the 24 x 24 conditioned stamp
        np.testing.assert_array_equal(got[0], native[f"gal-{row:03d}"])  # the values themselves, in float32
        assert r.headers["X-Pixels-Source"].startswith("native cutout")
    stage = next((run / "stages").glob("read-*"))
    stamps = GalaxySet.load(stage).images
    r = client.get("/api/pixels/3?source=stamp")
    np.testing.assert_array_equal(_values(r), np.asarray(stamps[3], dtype=np.float32))
    from galtaxa.taxonomy.polar import polar_unfold

    r = client.get("/api/pixels/3?source=polar")
    np.testing.assert_allclose(_values(r), polar_unfold(np.asarray(stamps[3:4], np.float32), angle_step=0.1)[0])


def test_the_pixel_scale_comes_from_the_config_then_the_catalog(tmp_path):
    _, _, client = _fits_run(tmp_path / "a", config_scale=0.03)
    g = client.get("/api/galaxy/0").get_json()
    assert g["pixel_scale"] == 0.03 and "measure.pixel_scale" in g["pixel_scale_from"]
    _, _, client = _fits_run(tmp_path / "b")  # only the FITS header's PIXSCALE, in the catalog's column
    g = client.get("/api/galaxy/0").get_json()
    assert g["pixel_scale"] == 0.262 and "pixel_scale column" in g["pixel_scale_from"]
    _, _, client = _fits_run(tmp_path / "c", pixscale=None)
    g = client.get("/api/galaxy/0").get_json()
    assert g["pixel_scale"] is None and "set measure.pixel_scale" in g["pixel_scale_from"]


def test_a_relative_input_path_is_found_beside_the_runs_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # input/ is not here but in the run folder
    _, native, client = _fits_run(tmp_path, relative=True)
    r = client.get("/api/pixels/2?source=native")
    assert r.status_code == 200, r.get_json()
    np.testing.assert_array_equal(_values(r)[0], native["gal-002"])


def test_pixels_that_cannot_be_sent_are_refused_with_the_reason(tmp_path, monkeypatch):
    run, _, client = _fits_run(tmp_path)
    assert client.get("/api/pixels/0?source=raw").get_json()["error"] == "source must be one of native, stamp, polar"
    assert client.get("/api/pixels/0?source=raw").status_code == 400
    assert client.get(f"/api/pixels/{N}?source=native").status_code == 404
    (run / "input" / "gal-004.fits").write_bytes(b"not a FITS file")
    r = client.get("/api/pixels/4?source=native")
    assert r.status_code == 404 and "cannot be read" in r.get_json()["error"]
    import galtaxa.inspect.pixels as pixels

    monkeypatch.setattr(pixels, "MAX_PIXELS", 30 * 30)
    r = client.get("/api/pixels/1?source=native")
    assert r.status_code == 413 and "32 x 40 px" in r.get_json()["error"]
    assert client.get("/api/pixels/1?source=stamp").status_code == 200  # 24 x 24 fits

    shutil.rmtree(run / "input")  # the input moved away: the app opens it again, says so, keeps serving
    app = create_app(run)
    app.testing = True
    client = app.test_client()
    r = client.get("/api/pixels/1?source=native")
    assert r.status_code == 404 and "cannot be opened" in r.get_json()["error"]
    assert client.get("/api/pixels/1?source=stamp").status_code == 200
    assert client.get("/api/galaxy/1").get_json()["pixels"]["native"]["available"] is False


def test_without_a_read_stage_or_an_input_there_are_no_pixel_values(tmp_path):
    run = build_run(tmp_path / "run", pixels=False, nasty=False)
    app = create_app(run)
    app.testing = True
    client = app.test_client()
    r = client.get("/api/pixels/0?source=stamp")
    assert r.status_code == 404 and "no read stage" in r.get_json()["error"]
    r = client.get("/api/pixels/0?source=native")
    assert r.status_code == 404 and "names no input" in r.get_json()["error"]
    assert client.get("/img/0.png").status_code == 200  # the mosaic cell is still shown
