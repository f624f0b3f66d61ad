"""The training loop says how far it is: periodic lines in a log file, nothing or a bar as the environment says
(issue: `galtaxa train` printed nothing for minutes)."""

from __future__ import annotations

import pytest
import torch

from galtaxa.training.trainer import Trainer
from galtaxa.utils.progress import progress_mode


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
