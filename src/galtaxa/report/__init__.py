"""The run's report: one self-contained ``report.html``, the PNG figures and ``report.json`` with every number.

The entry point is :func:`build_report`; the numbers and figures it shows come from :mod:`galtaxa.analysis`.
"""

from .build import DEFAULT_PARAMS, build_report, default_params

__all__ = ["DEFAULT_PARAMS", "build_report", "default_params"]
