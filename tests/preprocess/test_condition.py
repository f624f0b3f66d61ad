"""The Conditioner: output and config round trip, channels and NaN fill, images without signal, GalaxySets built
with it, and the scaling chosen by input kind."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from galtaxa.io.base import CutoutSource, build_galaxyset
from galtaxa.preprocess import Conditioner, center_crop_or_pad
from galtaxa.preprocess.condition import auto_scaling
from galtaxa.status import BAD_INPUT, OK, BadInputError

from _blobs import exp_galaxy


# --------------------------------------------------------------- Conditioner
def test_conditioner_output_and_config_round_trip():
    rng = np.random.default_rng(5)
    raw = (1130 + exp_galaxy(size=131) + rng.normal(0, 6, (131, 131))).astype(np.uint16)
    cond = Conditioner(size=64, geometry="crop_resize", crop_fraction=0.8, background="sigma_clip",
                       scaling="asinh", channels="mean")
    out = cond(raw)
    assert out.shape == (1, 64, 64) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    assert np.unravel_index(out[0].argmax(), (64, 64)) in {(31, 31), (31, 32), (32, 31), (32, 32)}
    cfg = cond.to_dict()
    again = Conditioner.from_dict(json.loads(json.dumps(cfg)))
    assert again == cond
    np.testing.assert_array_equal(again(raw), out)
    with pytest.raises(ValueError, match="unknown Conditioner"):
        Conditioner.from_dict({**cfg, "colour": 1})
    with pytest.raises(ValueError, match="geometry"):
        Conditioner(geometry="zoom")


def test_conditioner_channels_and_nan_fill():
    rng = np.random.default_rng(6)
    rgb = rng.random((3, 40, 50)).astype(np.float32)
    rgb[1, 5, 5] = np.nan
    lum = Conditioner(size=32, scaling=None, channels="luminance", nan_fill="zero")(rgb)
    filled = np.nan_to_num(rgb, nan=0.0)
    expect = center_crop_or_pad(0.299 * filled[0] + 0.587 * filled[1] + 0.114 * filled[2], 32)
    np.testing.assert_allclose(lum[0], expect, atol=1e-6)
    assert Conditioner(size=32, channels=2, scaling=None)(rgb).shape == (1, 32, 32)
    assert Conditioner(size=32, channels="all", scaling="lupton")(rgb).shape == (3, 32, 32)
    with pytest.raises(BadInputError, match="channel 5"):
        Conditioner(size=32, channels=5)(rgb)
    # padding a small stamp uses the channel median (the sky), not a hard zero
    small = Conditioner(size=60, geometry="crop", scaling=None, channels=0)(rgb + 10)
    assert small[0, 0, 0] == pytest.approx(np.median(filled[0] + 10), abs=1e-5)


def test_conditioner_rejects_images_without_signal():
    rng = np.random.default_rng(8)
    sky_only = 1130 + rng.normal(0, 6, (80, 80))
    cond = Conditioner(size=64, background="sigma_clip")
    with pytest.raises(BadInputError, match="nothing left after background subtraction"):
        cond(sky_only)
    with pytest.raises(BadInputError, match="constant"):
        Conditioner(size=8, geometry="crop")(np.pad(np.ones((8, 8)), 30))  # the kept centre is flat
    with pytest.raises(BadInputError):
        Conditioner(size=8)(np.zeros((0, 5)))
    out, reasons = cond.transform_batch([sky_only, 1130 + exp_galaxy(size=80)], errors="collect")
    assert out.shape == (2, 1, 64, 64) and (out[0] == 0).all() and out[1].max() > 0
    assert "nothing left" in reasons[0] and reasons[1] == ""
    with pytest.raises(BadInputError, match="image 0"):
        cond.transform_batch([sky_only])


class _ArraySource(CutoutSource):
    """A tiny in-memory reader: one entry per array, None for a file that is bad on disk."""

    kind = "test-arrays"

    def __init__(self, arrays):
        self.arrays = arrays
        ids = [f"g{i}" for i in range(len(arrays))]
        super().__init__(ids, pd.DataFrame({"source": [f"mem://{i}.fits" for i in ids]}))

    def _read(self, i):
        if self.arrays[i] is None:
            raise OSError("file truncated")
        return self.arrays[i]


def test_build_galaxyset_with_conditioner():
    rng = np.random.default_rng(9)
    good = [(1130 + exp_galaxy(size=s, centre=(s // 2, s // 2)) + rng.normal(0, 6, (s, s))).astype(np.uint16)
            for s in (71, 101, 150)]
    sky_only = (1130 + rng.normal(0, 6, (90, 90))).astype(np.uint16)
    arrays = [good[0], np.zeros((0, 283), np.uint16), good[1], sky_only, None, good[2]]
    cond = Conditioner(size=48, geometry="resize", background="sigma_clip", scaling="asinh")
    gs = build_galaxyset(_ArraySource(arrays), transform=cond, conditioning=cond.to_dict())
    assert len(gs) == 6 and gs.images.shape == (6, 1, 48, 48)
    assert gs.meta["status"].tolist() == [OK, BAD_INPUT, OK, BAD_INPUT, BAD_INPUT, OK]
    reasons = gs.meta["reason"].tolist()
    assert "zero-size" in reasons[1] and "mem://g1.fits" in reasons[1]
    assert "nothing left after background subtraction" in reasons[3] and "mem://g3.fits" in reasons[3]
    assert "file truncated" in reasons[4]
    ok = gs.images[gs.ok]
    assert ok.min() >= 0 and ok.max() <= 1 and (ok.reshape(3, -1).max(axis=1) > 0.9).all()
    assert (gs.images[~gs.ok] == 0).all()
    assert gs.info["conditioning"]["background"] == "sigma_clip"


class _Source:
    def __init__(self, kind, dtypes):
        import pandas as pd

        self.kind = kind
        self.meta = pd.DataFrame({"dtype": dtypes})


@pytest.mark.parametrize("kind,dtypes,expected", [
    ("image-folder", ["uint8", ""], "display"),
    ("hdf5", ["uint8"], "display"),
    ("array", ["uint8", "uint8"], "display"),
    ("array", ["float32"], "asinh"),
    ("fits-folder", ["int16"], "asinh"),
    ("mosaic", ["float32"], "asinh"),
])
def test_auto_scaling_by_input_kind(kind, dtypes, expected):
    assert auto_scaling(_Source(kind, dtypes)) == expected


@pytest.mark.shared_data
def test_gz1_conditioned_by_default_is_not_saturated(shared_data):
    """The mosaics show the galaxies the way the survey composites do: few saturated pixels."""
    from galtaxa.config import default_config
    from galtaxa.io import open_dataset
    from galtaxa.pipeline import make_conditioner

    src = open_dataset(shared_data / "gz1")
    cfg = default_config()
    cond = make_conditioner(cfg, src)
    assert cond.scaling == "display"
    imgs = np.stack([cond(src.read(i)) for i in range(0, 400, 20)])
    assert (imgs >= 0.98).mean() < 0.005
    old = Conditioner(size=100, scaling="asinh")
    old_imgs = np.stack([old(src.read(i)) for i in range(0, 400, 20)])
    assert (old_imgs >= 0.98).mean() > 5 * max((imgs >= 0.98).mean(), 1e-4)
