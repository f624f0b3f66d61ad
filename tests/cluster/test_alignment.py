"""Label alignment: a permutation recovered, overlap and Hungarian matching, -1 and unmatched groups."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.cluster import align_hungarian, align_overlap, hungarian_mapping, overlap_mapping, relabel


# --------------------------------------------------------------------------- alignment
def test_alignment_recovers_a_permutation(rng):
    ref = rng.integers(0, 6, size=300)
    perm = np.array([3, 5, 0, 1, 4, 2])
    other = perm[ref]
    np.testing.assert_array_equal(align_overlap(ref, other), ref)
    np.testing.assert_array_equal(align_hungarian(ref, other), ref)
    assert overlap_mapping(ref, other) == {int(perm[i]): i for i in range(6)}


def test_overlap_and_hungarian_differ_when_two_groups_share_a_reference_group():
    # other group 0 and 1 both sit mostly in reference group 0; group 1 also covers part of reference group 1
    ref = np.array([0] * 10 + [1] * 4)
    other = np.array([0] * 6 + [1] * 4 + [1] * 4)
    assert overlap_mapping(ref, other) == {0: 0, 1: 0}  # many-to-one
    assert hungarian_mapping(ref, other) == {0: 0, 1: 1}  # one-to-one: total overlap 6 + 4 = 10
    np.testing.assert_array_equal(align_overlap(ref, other), np.zeros(14))
    np.testing.assert_array_equal(align_hungarian(ref, other), other)


def test_alignment_ignores_minus_one_and_unmatched_groups():
    ref = np.array([0, 0, 1, 1, -1, -1, -1])
    other = np.array([7, 7, 8, 8, 9, 9, -1])
    # group 9 only overlaps reference -1: no mapping, so it becomes -1; -1 stays -1
    np.testing.assert_array_equal(align_overlap(ref, other), [0, 0, 1, 1, -1, -1, -1])
    # more groups than reference labels: Hungarian leaves the smaller one unmatched
    ref2 = np.array([0, 0, 0, 1, 1, 1])
    other2 = np.array([0, 0, 2, 1, 1, 1])
    assert hungarian_mapping(ref2, other2) == {0: 0, 1: 1, 2: -1}
    np.testing.assert_array_equal(relabel([5, -1, 0], {0: 3}), [-1, -1, 3])
    with pytest.raises(ValueError, match="equal length"):
        align_overlap([0, 1], [0])
