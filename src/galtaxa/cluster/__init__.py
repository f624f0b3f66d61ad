"""galtaxa.cluster: the voting ensemble (k-means + BIRCH + Ward), label alignment and scalable Ward."""

from galtaxa.cluster.alignment import (
    align_hungarian,
    align_overlap,
    relabel,
    contingency,
    hungarian_mapping,
    overlap_mapping,
)
from galtaxa.cluster.scalable_ward import (
    WardClustering,
    birch_auto_threshold,
    birch_leaves,
    weighted_ward_labels,
    weighted_ward_tree,
)
from galtaxa.cluster.voting import ALGORITHMS, VotingClustering, vote

__all__ = [
    "align_hungarian",
    "align_overlap",
    "relabel",
    "contingency",
    "hungarian_mapping",
    "overlap_mapping",
    "WardClustering",
    "birch_auto_threshold",
    "birch_leaves",
    "weighted_ward_labels",
    "weighted_ward_tree",
    "ALGORITHMS",
    "VotingClustering",
    "vote",
]
