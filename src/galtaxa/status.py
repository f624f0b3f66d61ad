"""Per-galaxy processing status and the error type for bad input.

Every galaxy given as input appears in every output table.  A galaxy that could
not be processed keeps its row, with ``status`` set to one of the constants
below and a human-readable ``reason`` that names the file and the problem.

Statuses are ordered by the stage that set them, so a later stage never
overwrites an earlier failure: once a galaxy is ``bad_input`` it stays so.
"""

from __future__ import annotations

import logging

__all__ = [
    "OK",
    "BAD_INPUT",
    "FAILED",
    "PURGED",
    "REJECTED",
    "NOT_RUN",
    "UNCLASSIFIED",
    "STATUSES",
    "BadInputError",
    "log",
]

OK = "ok"
#: The file or array could not be read or holds no usable galaxy.
BAD_INPUT = "bad_input"
#: A processing stage failed for this galaxy (the reason says which and why).
FAILED = "failed"
#: Removed from the fit by a purge rule (outlier parameters, IsolationForest).
PURGED = "purged"
#: Kept but not assigned by a vote or threshold (``labels_ == -1``).
REJECTED = "rejected"

#: The supervised classifier's confidence is below the threshold chosen for a target precision
#: (column ``sup_status``: the galaxy keeps its probabilities but gets no class).
UNCLASSIFIED = "unclassified"

STATUSES = (OK, BAD_INPUT, FAILED, PURGED, REJECTED, UNCLASSIFIED)

#: A per-stage status column (``measure_status``) for a galaxy the stage never saw.
NOT_RUN = "not_run"

log = logging.getLogger("galtaxa")


class BadInputError(ValueError):
    """A single galaxy's input is unusable.

    Readers raise it with a message that says what is wrong (``"zero-size
    array of shape (0, 283)"``); the caller adds the file name and records the
    galaxy with ``status = "bad_input"`` instead of stopping the run.
    """
