"""The mosaics: stretches, sizes, pixel placement, titles, seeded samples of each group."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.label import group_mosaics, load_mosaic_table, make_mosaic, stretch_image
from galtaxa.preprocess import Scaler

from _mosaics import read_png, toy_groups


# ----------------------------------------------------------------------------------------------- mosaic
def test_stretch_formulas():
    x = np.linspace(0, 10, 101, dtype=np.float32).reshape(1, 1, 101)
    lin = stretch_image(x, "linear", percentile=100)
    np.testing.assert_allclose(lin, x / 10, atol=1e-6)
    ash = stretch_image(x, "asinh", percentile=100)
    np.testing.assert_allclose(ash, np.arcsinh(x / 10 / 0.1) / np.arcsinh(10), atol=1e-6)
    assert ash.min() == 0 and ash.max() == pytest.approx(1)
    np.testing.assert_array_equal(stretch_image(x, "none"), np.clip(x, 0, 1))
    # constant and non-finite images do not blow up
    assert not stretch_image(np.full((1, 4, 4), 3.0), "asinh").any()
    y = x.copy()
    y[0, 0, :5] = np.nan
    out = stretch_image(y, "linear", percentile=100)
    assert np.isfinite(out).all() and (out[0, 0, :5] == 0).all()
    with pytest.raises(ValueError, match="stretch"):
        stretch_image(x, "log")


@pytest.mark.parametrize("n, ncols, border", [(1, 10, 1), (7, 3, 2), (10, 10, 0), (23, 5, 1)])
def test_mosaic_size_arithmetic(n, ncols, border):
    h, w = 6, 9
    imgs = np.random.default_rng(0).random((n, 1, h, w), dtype=np.float32)
    canvas = make_mosaic(imgs, ncols=ncols, border=border)
    nc = min(ncols, n)
    nr = -(-n // nc)
    assert canvas.dtype == np.uint8
    assert canvas.shape == (border + nr * (h + border), border + nc * (w + border), 3)


def test_mosaic_pixel_placement_and_png(tmp_path):
    # 7 blank (zero) grey images and one known RGB pattern at index 5 -> row 1, column 2 with ncols=3
    h, w, border = 5, 4, 1
    imgs = np.zeros((7, 3, h, w), dtype=np.float32)
    pattern = np.zeros((3, h, w), dtype=np.float32)
    pattern[0, 0, 0] = 1.0            # red top-left pixel
    pattern[2, h - 1, w - 1] = 0.5    # half-blue bottom-right pixel
    imgs[5] = pattern
    png = tmp_path / "m.png"
    canvas = make_mosaic(imgs, path=png, ncols=3, stretch="none", border=border)
    y0 = border + 1 * (h + border)
    x0 = border + 2 * (w + border)
    cell = canvas[y0:y0 + h, x0:x0 + w]
    expected = np.round(pattern.transpose(1, 2, 0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(cell, expected)
    # every other image is black, the borders white, the two unused cells grey
    assert (canvas[border:border + h, border:border + w] == 0).all()
    assert (canvas[0, :] == 255).all() and (canvas[:, x0 - 1] == 255).all()
    y2 = border + 2 * (h + border)
    assert (canvas[y2:y2 + h, border + 1 * (w + border):] != 255).any()  # unused cells are drawn
    assert (canvas[y2:y2 + h, border + 1 * (w + border):border + 1 * (w + border) + w] == 64).all()
    # the PNG holds exactly the canvas
    np.testing.assert_array_equal(read_png(png), canvas)


def test_mosaic_grey_resize_titles():
    imgs = np.ones((4, 1, 8, 8), dtype=np.float32)
    imgs[:, :, :4] = 0  # top half dark, bottom half bright
    canvas = make_mosaic(imgs, ncols=2, stretch="linear", percentile=100, cell_px=16, border=0)
    assert canvas.shape == (32, 32, 3)
    assert (canvas[..., 0] == canvas[..., 1]).all() and (canvas[..., 1] == canvas[..., 2]).all()
    assert canvas[2, 2, 0] == 0 and canvas[13, 2, 0] == 255
    titled = make_mosaic(imgs, ncols=2, titles=["a", "b", "c", "d"], cell_px=16, border=0)
    strip = (titled.shape[0] - 32) // 2  # one title strip above each row of cells
    assert strip > 0 and titled.shape == (32 + 2 * strip, 32, 3)
    assert (titled[:strip] < 128).any()  # dark text drawn on the white strip
    np.testing.assert_array_equal(titled[strip:strip + 16, :16], canvas[:16, :16])


def test_mosaic_bad_input():
    with pytest.raises(ValueError, match="empty"):
        make_mosaic(np.zeros((0, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="channels"):
        make_mosaic(np.zeros((2, 2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="titles"):
        make_mosaic(np.zeros((2, 1, 8, 8), np.float32), titles=["x"])
    with pytest.raises(ValueError, match="ncols"):
        make_mosaic(np.zeros((2, 1, 8, 8), np.float32), ncols=0)


def test_group_mosaics_seeded_sampling(tmp_path):
    imgs, groups = toy_groups()
    ids = [f"g{i:03d}" for i in range(len(imgs))]
    kw = dict(n_per_group=5, ids=ids, preprocessed=imgs[:, :, :, :4])
    t1 = group_mosaics(imgs, groups, tmp_path / "a", seed=3, **kw)
    t2 = group_mosaics(imgs, groups, tmp_path / "b", seed=3, **kw)
    t3 = group_mosaics(imgs, groups, tmp_path / "c", seed=4, **kw)
    assert list(t1["group"]) == [0, 1, 2, 12, -1]
    assert list(t1["name"]) == ["group_00", "group_01", "group_02", "group_12", "rejected"]
    assert t1["ids"].tolist() == t2["ids"].tolist()
    assert t1["ids"].tolist() != t3["ids"].tolist()
    # sizes and membership
    for row in t1.itertuples():
        members = np.flatnonzero(groups == row.group)
        assert row.n_members == len(members)
        assert row.n_shown == min(5, len(members)) == len(row.indices) == len(set(row.indices))
        assert set(row.indices) <= set(members)
        assert row.ids == [ids[i] for i in row.indices]
        for png in (row.png, row.png_pre):
            assert read_png(png).shape[0] > 0
    # the small group is shown whole; the mosaic really holds the chosen members, in order
    assert t1.set_index("group").loc[12, "indices"] == [0, 1, 2]
    row = t1.iloc[0]
    np.testing.assert_array_equal(read_png(row.png),
                                  make_mosaic(imgs[row.indices]))
    # a group's sample does not depend on the other groups
    g2 = groups.copy()
    g2[groups == 1] = 7
    t4 = group_mosaics(imgs, g2, tmp_path / "d", seed=3, **kw)
    assert t4.set_index("group").loc[0, "ids"] == t1.set_index("group").loc[0, "ids"]
    # the written table reads back
    back = load_mosaic_table(tmp_path / "a")
    assert back["ids"].tolist() == t1["ids"].tolist() and back["png"].tolist() == t1["png"].tolist()


def test_group_mosaics_options(tmp_path):
    imgs, groups = toy_groups()
    g = groups.astype(float)
    g[10] = np.nan  # a galaxy without a group is not drawn
    t = group_mosaics(imgs, g, tmp_path, n_per_group=100, include_rejected=False)
    assert -1 not in set(t["group"])
    assert t["n_members"].sum() == (groups >= 0).sum() - 1
    assert (t["png_pre"] == "").all()
    with pytest.raises(ValueError, match="groups has"):
        group_mosaics(imgs, groups[:-1], tmp_path)
    with pytest.raises(ValueError, match="integers"):
        group_mosaics(imgs, np.full(len(imgs), 0.5), tmp_path)


def test_mosaics_show_display_ready_images_unchanged():
    from galtaxa.label.thumbnails import make_mosaic, mosaic_stretch_for

    assert mosaic_stretch_for("display") == mosaic_stretch_for("asinh") == "none"
    assert mosaic_stretch_for("zscore") == mosaic_stretch_for(None) == "asinh"
    img = np.random.default_rng(1).integers(0, 256, (1, 3, 16, 16)).astype(np.float32)
    shown = make_mosaic(Scaler("display").transform(img), ncols=1, stretch=mosaic_stretch_for("display"),
                        cell_px=(16, 16))
    # the picture appears with the survey's own colours: no pixel moves by more than rounding
    cell = np.asarray(shown)
    assert any(np.abs(cell[y:y + 16, x:x + 16].astype(int) - np.moveaxis(img[0], 0, -1).astype(int)).max() <= 1
               for y in range(cell.shape[0] - 15) for x in range(cell.shape[1] - 15)) if cell.ndim == 3 else False
