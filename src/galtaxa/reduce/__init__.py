"""galtaxa.reduce: dimensionality reduction of feature matrices (PCA, UMAP with a Davies–Bouldin scan)."""

from galtaxa.reduce.pca import PCAReducer, plot_variance_curve
from galtaxa.reduce.rows import RowView, finite_rows, sample_rows
from galtaxa.reduce.umap_scan import UMAPReducer, plot_db_scan

__all__ = ["PCAReducer", "RowView", "UMAPReducer", "finite_rows", "plot_db_scan", "plot_variance_curve", "sample_rows"]
