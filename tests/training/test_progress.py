"""Long training loops say how far they are: a bar on a terminal, periodic lines in a log file (issue: `galtaxa
train` printed nothing for minutes)."""

from __future__ import annotations

import io

import pytest
import torch

from galtaxa.training.trainer import Trainer
from galtaxa.utils.progress import ProgressLines, progress_mode


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


def _train(progress: bool) -> Trainer:
    net = torch.nn.Linear(2, 1)
    trainer = Trainer(3, name="classifier", progress=progress)
    trainer.run({"net": net}, None, lambda epoch: {"loss": 0.5 - 0.1 * epoch})
    return trainer


def test_a_trainer_in_a_log_file_prints_its_epochs(capsys, monkeypatch):
    monkeypatch.delenv("GALTAXA_PROGRESS", raising=False)
    assert progress_mode() == "lines"  # pytest captures stderr: not a terminal
    _train(progress=True)
    err = capsys.readouterr().err
    assert "galtaxa: classifier epoch 1/3: loss 0.5" in err and "galtaxa: classifier epoch 3/3: loss 0.3" in err
    _train(progress=False)  # --quiet
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("flag, mode", [("0", "off"), ("1", "bars")])
def test_the_environment_chooses(monkeypatch, flag, mode, capsys):
    monkeypatch.setenv("GALTAXA_PROGRESS", flag)
    assert progress_mode() == mode
    _train(progress=True)
    err = capsys.readouterr().err
    assert "galtaxa: classifier epoch" not in err  # off: nothing; bars: tqdm's bar instead of lines
    assert ("classifier" in err) == (mode == "bars")
