"""Progress lines: rate-limited, with the time left."""

from __future__ import annotations

import io

from galtaxa.utils.progress import ProgressLines


def test_progress_lines_are_rate_limited_and_say_the_time_left():
    out = io.StringIO()
    lines = ProgressLines("classifier", total=5, every_s=3600, stream=out)
    printed = [lines.update(i, {"loss": 1.0 / (i + 1), "val_macro_f1": 0.5, "epoch": i}) for i in range(5)]
    assert printed == [True, False, False, False, True]  # the first, then nothing within an hour, the last
    first, last = out.getvalue().splitlines()
    assert first.startswith("galtaxa: classifier epoch 1/5: loss 1, val_macro_f1 0.5; ")
    assert "per epoch, about" in first and "left" in first
    assert last.startswith("galtaxa: classifier epoch 5/5: loss 0.2") and last.endswith("done")
    every = io.StringIO()
    lines = ProgressLines("x", total=3, every_s=0, stream=every)
    assert all(lines.update(i) for i in range(3)) and len(every.getvalue().splitlines()) == 3
