"""The run's report: one self-contained ``report.html``, the PNG figures and ``report.json`` with every number.

The entry point is :func:`build_report`; its caller adds sections of its own (:class:`ReportSection`); the numbers and figures it shows come from :mod:`galtaxa.analysis`.
"""

from .build import DEFAULT_PARAMS, ReportSection, ReportWriter, build_report, default_params

__all__ = ["DEFAULT_PARAMS", "ReportSection", "ReportWriter", "build_report", "default_params"]
