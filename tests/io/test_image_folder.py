"""ImageFolderSource: the real gz1 folder, error placeholders flagged as rows, label tables, modes and formats."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from galtaxa.io import ImageFolderSource
from galtaxa.status import OK, BadInputError

from _blobs import placeholder_file, sky_picture


GZ1_COUNTS = {0: 2787, 1: 248, 2: 262, 3: 599, 4: 34, 5: 69}


# ----------------------------------------------------------------- gz1 (real)
def test_gz1_counts_from_csv_and_file_list(shared_data):
    src = ImageFolderSource(shared_data / "gz1")  # finds images/ and labels.csv
    assert len(src) == 3999
    assert src.label_path.name == "labels.csv"
    assert src.meta["label"].value_counts().to_dict() == GZ1_COUNTS
    assert src.meta["label"].dtype.kind == "i"
    assert not any(src.problems.values())
    assert src.meta["source"].str.endswith(".jpeg").all()
    same = ImageFolderSource(shared_data / "gz1" / "images")  # CSV found in the parent
    assert same.ids == src.ids and same.meta["label"].tolist() == src.meta["label"].tolist()


def test_gz1_sample_reads_and_no_false_placeholder(shared_data):
    src = ImageFolderSource(shared_data / "gz1" / "images")
    idx = np.random.default_rng(0).choice(len(src), 200, replace=False)
    flagged = []
    for i, img, reason in src.iter_images(idx):
        if img is None:
            flagged.append(reason)
            continue
        assert img.shape == (3, 423, 423) and img.dtype == np.float32
        assert 0 <= img.min() and img.max() <= 255
    assert flagged == []
    i = int(idx[0])
    ref = np.asarray(Image.open(src.meta.at[i, "source"]).convert("RGB"), dtype=np.float32)
    np.testing.assert_array_equal(src.read(i), np.moveaxis(ref, -1, 0))


@pytest.mark.slow
def test_gz1_full_no_false_placeholder(shared_data):
    """None of the 3,999 gz1 cutouts is flagged (about 30-60 s)."""
    src = ImageFolderSource(shared_data / "gz1" / "images")
    flagged = [(src.ids[i], r) for i, img, r in src.iter_images() if img is None]
    assert flagged == []


def test_folder_flags_placeholder(tmp_path, rng):
    for k in range(3):
        Image.fromarray(sky_picture(rng)).save(tmp_path / f"gal{k}.png")
    placeholder_file(tmp_path / "587729387686002878.jpeg", size=64, font_size=10)
    src = ImageFolderSource(tmp_path, labels=None)
    i = src.ids.index("587729387686002878")
    with pytest.raises(BadInputError, match=r"587729387686002878\.jpeg: error placeholder picture, not a galaxy"):
        src.read(i)
    assert all(img is not None for j, img, _ in src.iter_images() if j != i)
    off = ImageFolderSource(tmp_path, labels=None, check_placeholder=False)
    assert off.read(i).shape == (3, 64, 64)


# ------------------------------------------------------------ labels, modes
def test_labels_mismatch_reported(tmp_path, rng):
    imgs = tmp_path / "images"
    imgs.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(sky_picture(rng, 16)).save(imgs / f"{name}.jpg")
    pd.DataFrame({"objid": ["a", "b", "zz", "yy"], "ans": ["E", "S", "E", "M"], "ra": [1.0, 2.0, 3.0, 4.0]}
                 ).to_csv(tmp_path / "table.csv", index=False)
    with pytest.warns(UserWarning, match="2 label rows have no picture.*1 pictures have no label row"):
        src = ImageFolderSource(imgs)
    assert src.problems["labels_without_image"] == ["zz", "yy"]
    assert src.problems["images_without_label"] == ["c"]
    meta = src.meta.set_index("id")
    assert meta.loc["a", "label"] == "E" and meta.loc["b", "ra"] == 2.0
    assert pd.isna(meta.loc["c", "label"]) and meta.loc["c", "status"] == OK


def test_label_csv_with_file_names_and_explicit_columns(tmp_path, rng):
    for name in ("g1", "g2"):
        Image.fromarray(sky_picture(rng, 16)).save(tmp_path / f"{name}.png")
    pd.DataFrame({"file_loc": ["/x/g1.png", "/x/g2.png"], "kind": [3, 5], "extra": [0.1, 0.2]}).to_csv(
        tmp_path / "cat.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        src = ImageFolderSource(tmp_path, label_column="kind")
    assert src.meta["label"].tolist() == [3, 5] and src.meta["extra"].tolist() == [0.1, 0.2]
    with pytest.raises(ValueError, match="label column 'nope'"):
        ImageFolderSource(tmp_path, label_column="nope")
    with pytest.raises(ValueError, match="id column 'nope'"):
        ImageFolderSource(tmp_path, id_column="nope")


def test_modes_and_formats(tmp_path, rng):
    rgb = sky_picture(rng, 20)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "l.png")
    deep = (rng.random((20, 20)) * 60000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.tif")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    f = rgb.astype(np.float32)
    src = ImageFolderSource(tmp_path, labels=None)
    assert src.ids == ["broken", "c", "d", "l"]
    np.testing.assert_array_equal(src.read(1), np.moveaxis(f, -1, 0))
    np.testing.assert_array_equal(src.read(3), np.repeat(f[None, ..., 0], 3, axis=0))  # grey -> 3 channels
    with pytest.raises(BadInputError, match="broken.jpg"):
        src.read(0)
    grey = ImageFolderSource(tmp_path, labels=None, mode="grey")
    np.testing.assert_allclose(grey.read(1)[0], f @ np.array([0.299, 0.587, 0.114]), rtol=1e-5)
    np.testing.assert_array_equal(grey.read(2)[0], deep.astype(np.float32))  # 16-bit kept
    g = ImageFolderSource(tmp_path, labels=None, mode="g")
    np.testing.assert_array_equal(g.read(1)[0], f[..., 1])
    with pytest.raises(ValueError, match="mode must be"):
        ImageFolderSource(tmp_path, mode="hsv")


def test_empty_folder_is_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no picture"):
        ImageFolderSource(tmp_path)


def test_copy_of_gz1_subset_with_placeholder(shared_data, tmp_path):
    """A few real gz1 files plus a placeholder: only the placeholder is flagged."""
    src_dir = shared_data / "gz1" / "images"
    files = sorted(src_dir.glob("*.jpeg"))[:5]
    for f in files:
        shutil.copy(f, tmp_path / f.name)
    placeholder_file(tmp_path / "587729387686002878.jpeg")
    with pytest.warns(UserWarning, match="3994 label rows have no picture"):
        src = ImageFolderSource(tmp_path, labels=shared_data / "gz1" / "labels.csv")
    assert src.problems["labels_without_image"] and src.problems["images_without_label"] == ["587729387686002878"]
    bad = [(src.ids[i], r) for i, img, r in src.iter_images() if img is None]
    assert [b[0] for b in bad] == ["587729387686002878"]
    assert "error placeholder picture" in bad[0][1]
