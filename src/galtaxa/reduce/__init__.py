"""galtaxa.reduce: dimensionality reduction of feature matrices (PCA, UMAP with a Davies–Bouldin scan)."""

from galtaxa.reduce.pca import PCAReducer, plot_variance_curve
from galtaxa.reduce.umap_scan import UMAPReducer, plot_db_scan

__all__ = ["PCAReducer", "plot_variance_curve", "UMAPReducer", "plot_db_scan"]
