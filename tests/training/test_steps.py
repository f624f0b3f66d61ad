"""The one batch loop (galtaxa.training.trainer.Trainer with Steps): what it steps, what it records, when it stops."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from galtaxa.training.trainer import Steps, Trainer, seeded_torch


def _problem():
    torch.manual_seed(0)
    x = torch.randn(10, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    return x, y


def test_steps_train_like_a_hand_written_loop_and_record_the_size_weighted_mean():
    """Same weights as zero_grad / loss / backward / step / scheduler step written out, and the epoch's loss is
    ``sum n_b L_b / sum n_b`` over batches of 4, 4 and 2 rows."""
    x, y = _problem()
    chunks = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 10)]

    def make():
        torch.manual_seed(1)
        net = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        return net, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    net, opt, sched = make()
    losses = []
    for _ in range(2):
        for idx in chunks:
            opt.zero_grad()
            loss = torch.mean((net(x[idx])[:, 0] - y[idx]) ** 2)
            loss.backward()
            opt.step()
            sched.step()
            losses.append((float(loss.detach()), len(idx)))
    expected = [sum(v * n for v, n in losses[e * 3:(e + 1) * 3]) / 10 for e in range(2)]

    net2, opt2, sched2 = make()

    def loss_fn(idx):
        loss = torch.mean((net2(x[idx])[:, 0] - y[idx]) ** 2)
        return loss, len(idx), {"mse": loss, "twice": 2 * float(loss.detach())}

    trainer = Trainer(2, name="toy")
    trainer.run({"net": net2}, opt2, Steps(lambda epoch: chunks, loss_fn, sched2))
    for a, b in zip(net.parameters(), net2.parameters()):
        assert torch.equal(a, b)
    assert sched2.last_epoch == 6  # stepped after every optimiser step
    assert [h["train_loss"] for h in trainer.history] == expected
    assert [h["train_mse"] for h in trainer.history] == expected
    assert [h["train_twice"] for h in trainer.history] == pytest.approx([2 * e for e in expected], rel=1e-12)


def test_a_validate_hook_reads_the_epochs_training_loss_and_record_none_keeps_only_the_terms():
    x, y = _problem()
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    trainer = Trainer(3, patience=None, timed=True)
    seen = []

    def loss_fn(idx):
        loss = torch.mean((net(x[idx])[:, 0] - y[idx]) ** 2)
        return loss, len(idx), {"mse": loss}

    def validate(epoch):
        seen.append(trainer.current["train_mse"])
        return trainer.current["train_mse"], {}

    trainer.run({"net": net}, opt, Steps(lambda e: [np.arange(10)], loss_fn, record=None), validate)
    assert [h["train_mse"] for h in trainer.history] == seen
    assert all("train_loss" not in h and h["seconds"] >= 0 for h in trainer.history)
    assert list(trainer.history[0]) == ["epoch", "train_mse", "seconds"]
    assert trainer.best_value == min(seen)


def test_a_non_finite_loss_stops_and_the_epoch_context_is_left():
    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    events = []

    @contextmanager
    def context(epoch):
        events.append(("enter", epoch))
        try:
            yield
        finally:
            events.append(("exit", epoch))

    def batches(epoch):
        yield from ([0], [1])

    def loss_fn(batch):
        value = net(torch.ones(1, 1)).sum()
        return (value * float("nan") if batch == [1] else value), 1

    with pytest.raises(FloatingPointError, match="toy: non-finite loss at epoch 0"):
        Trainer(2, name="toy").run({"net": net}, opt, Steps(batches, loss_fn, context=context))
    assert events == [("enter", 0), ("exit", 0)]


def test_seeded_epochs_through_a_context_give_the_same_weights_twice():
    """An epoch's random draws made inside ``seeded_torch`` (dropout here) repeat from run to run and leave the
    caller's generator as it was."""
    def run():
        torch.manual_seed(3)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        x = torch.ones(6, 4)

        def loss_fn(batch):
            net.train()
            return net(x).pow(2).mean(), 1

        steps = Steps(lambda e: range(3), loss_fn, context=lambda e: seeded_torch(100 + e, torch.device("cpu")))
        before = torch.random.get_rng_state()
        Trainer(2).run({"net": net}, opt, steps)
        assert torch.equal(before, torch.random.get_rng_state())
        return [p.detach().clone() for p in net.parameters()]

    for a, b in zip(run(), run()):
        assert torch.equal(a, b)


def test_a_checkpoint_without_a_module_now_trained_starts_afresh(tmp_path, caplog):
    """A checkpoint written when the scheduler was not checkpointed is another run's: the trainer says so and
    trains from the start instead of failing on the missing module."""
    x, y = _problem()
    chunks = [np.arange(0, 5), np.arange(5, 10)]

    def run(with_schedule: bool):
        torch.manual_seed(1)
        net = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        modules = {"net": net, "schedule": sched} if with_schedule else {"net": net}
        trainer = Trainer(2, checkpoint_dir=tmp_path, fingerprint="same", name="toy")
        trainer.run(modules, opt, Steps(lambda epoch: chunks,
                                        lambda idx: (torch.mean((net(x[idx])[:, 0] - y[idx]) ** 2), len(idx)), sched))
        return trainer, net

    run(with_schedule=False)
    fresh, _net = run(with_schedule=True)
    assert [h["epoch"] for h in fresh.history] == [0, 1]
    assert "belongs to another run" in caplog.text
