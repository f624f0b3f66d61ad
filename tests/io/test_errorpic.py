"""The error-placeholder detector: SDSS's failed-cutout pictures found, real skies and edge cutouts kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from galtaxa.io import error_picture_stats, is_error_picture

from _blobs import placeholder_file, sky_picture


@pytest.mark.parametrize("bg,fg,font", [((0, 0, 0), (255, 255, 255), 12), ((255, 255, 255), (0, 0, 0), 40),
                                        ((0, 0, 0), (255, 0, 0), 40), ((128, 128, 128), (255, 255, 0), 24)])
def test_placeholder_detected(tmp_path, bg, fg, font):
    img = np.asarray(Image.open(placeholder_file(tmp_path / "p.jpeg", bg, fg, font_size=font)))
    bad, why = is_error_picture(img)
    assert bad and why


def test_sky_not_detected_and_stats(rng):
    sky = sky_picture(rng)
    assert is_error_picture(sky) == (False, "")
    s = error_picture_stats(sky)
    assert s["mode_fraction"] < 0.1 and s["n_colours"] > 1000 and s["centre_flat_fraction"] == 0
    # a real cutout at the edge of the footprint: half black, galaxy in the centre
    edge = sky.copy()
    edge[:, :28] = 0
    assert not is_error_picture(edge)[0]
    # a blank canvas with a little text away from the centre: test 3 (noiseless centre)
    canvas = np.full((64, 64, 3), 40, np.uint8)
    canvas[:20] = rng.integers(0, 255, (20, 64, 3))
    assert error_picture_stats(canvas)["mode_fraction"] < 0.75
    bad, why = is_error_picture(canvas)
    assert bad and "noiseless" in why
    # few distinct colours decide nothing (an 8-bit PNG of a faint galaxy can have < 64 grey levels)
    posterised = (rng.integers(0, 3, (64, 64, 3)) * 100).astype(np.uint8)  # 27 colours, no dominant one
    assert is_error_picture(posterised) == (False, "")
    assert is_error_picture(np.moveaxis(sky, -1, 0)) == (False, "")  # channels first too
