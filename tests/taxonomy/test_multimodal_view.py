"""M3's view: the encoder is given exactly the smoothed, z-scored pixels."""

from __future__ import annotations

import numpy as np

from galtaxa.taxonomy.multimodal_view import multimodal_view


def test_view_gives_the_encoder_exactly_the_zscored_pixels():
    from galtaxa.encode import get_encoder
    from galtaxa.preprocess.smoothing import smooth_zscore

    rng = np.random.default_rng(0)
    img = rng.random((2, 1, 40, 40)).astype(np.float32)
    enc = get_encoder("efficientnet_lite0", input_size=40)
    view = multimodal_view(img, 1.5, True, "image", enc.mean, enc.std)
    seen = enc.preprocess(view).cpu().numpy()
    expected = np.repeat(smooth_zscore(img, 1.5), 3, axis=1)
    np.testing.assert_allclose(seen, expected, atol=1e-4)
    plain = multimodal_view(img, 0, False, "image", enc.mean, enc.std)
    assert plain.min() == 0 and plain.max() == 1
