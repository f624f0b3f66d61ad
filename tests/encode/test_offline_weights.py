"""The offline Lite0 weights: ImageNet classes of real photos, the mapping of the weights checked."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import timm
import torch

from galtaxa.encode.offline_weights import LITE0_MEAN, LITE0_STD, lite0_weights_path, load_lite0_state_dict
from galtaxa.encode.registry import build_model

torch.set_num_threads(1)

CAT = {281, 282, 283, 284, 285}          # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {504, 967, 968}                 # coffee mug, espresso, cup


def as_batch(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) / 255).transpose(2, 0, 1)[None]


# ------------------------------------------------------------------ offline Lite0 weights
def test_offline_lite0_classifies_skimage_photos(lite0):
    head, info = build_model("efficientnet_lite0", num_classes=1000)
    assert info["mean"] == LITE0_MEAN and info["std"] == LITE0_STD
    for img, truth in ((skimage.data.chelsea(), CAT), (skimage.data.coffee(), COFFEE)):
        x = as_batch(img)
        with torch.inference_mode():
            t = lite0.preprocess(x)
            probs = head(t).softmax(-1)[0]
            pooled = head.forward_head(head.forward_features(t), pre_logits=True).numpy()
        top5 = set(probs.topk(5).indices.tolist())
        assert top5 & truth, top5
        assert int(probs.argmax()) in truth
        # the encoder returns exactly the pooled features feeding that classifier
        np.testing.assert_allclose(lite0.encode(x), pooled, rtol=1e-5, atol=1e-6)


def test_offline_lite0_mapping_is_checked():
    assert lite0_weights_path().name.endswith(".pth")
    wrong = timm.create_model("efficientnet_b0", pretrained=False)
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        load_lite0_state_dict(wrong)
