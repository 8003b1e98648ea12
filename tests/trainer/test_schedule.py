"""How long a run trains: a stall winds the run down with a short anneal, a slow machine is kept
inside the time limit, and the learning rate never jumps when the run is shortened."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.schedule import RunControl, ShrinkableCosine, evaluation_epochs


def test_evaluations_skip_the_first_third_and_include_the_last() -> None:
    at = evaluation_epochs(60, 0)
    assert min(at) > 20 and max(at) == 60 and 8 <= len(at) <= 15
    assert evaluation_epochs(10, 3) == {3, 6, 9, 10}


def test_a_stalled_run_is_wound_down_not_run_to_the_end() -> None:
    control = RunControl(epochs=60, steps_per_epoch=50)
    scores = iter([0.50, 0.60, 0.70, 0.701, 0.702, 0.700])  # three evaluations without a real gain
    stopped_at = None
    for epoch in range(1, 61):
        if epoch > control.epochs:
            break
        if epoch in control.eval_at and stopped_at is None:
            control.scored(epoch, next(scores), 1.0)
            if control.epochs < 60:
                stopped_at = epoch
    assert stopped_at is not None and control.epochs == stopped_at + 6  # 10 % of the plan to anneal
    assert control.epochs in control.eval_at and "stopped improving" in control.notes[0]


def test_improving_runs_are_not_stopped() -> None:
    control = RunControl(epochs=60, steps_per_epoch=50)
    for i, epoch in enumerate(sorted(control.eval_at)):
        control.scored(epoch, 0.5 + 0.01 * i, 1.0)
    assert control.epochs == 60 and not control.notes


def test_a_slow_machine_is_kept_inside_the_time_limit() -> None:
    control = RunControl(epochs=60, steps_per_epoch=50, limit_s=600.0)
    control.timed(1, 20.0)  # 20 s per epoch: 60 epochs would take 20 minutes
    assert control.epochs == 30 and "time limit" in control.notes[0]
    control.timed(2, 40.0)
    assert control.epochs == 30  # on track now: no further cut
    assert RunControl(epochs=60, steps_per_epoch=50, limit_s=None).epochs == 60
    slow_start = RunControl(epochs=60, steps_per_epoch=50, limit_s=600.0)
    slow_start.timed(1, 70.0, startup_s=60.0)  # a minute of graph tracing, then 10 s per epoch
    assert slow_start.epochs == 54  # 1 + 530 s / 10 s, not 600 s / 70 s per epoch


def test_squeezing_the_schedule_never_raises_the_rate_and_ends_at_the_floor() -> None:
    schedule = ShrinkableCosine(3e-3, 3000)
    before = [float(schedule(s)) for s in (0, 50, 100, 1000, 1500)]
    assert before[0] == pytest.approx(3e-4) and before[2] == pytest.approx(3e-3, rel=1e-3)
    assert before[3] > before[4]
    schedule.squeeze(1500, 300)
    assert float(schedule(1500)) == pytest.approx(before[4], rel=1e-4)  # no jump
    after = np.array([float(schedule(s)) for s in range(1500, 1801, 50)])
    assert np.all(np.diff(after) < 0) and after[-1] == pytest.approx(3e-3 * 0.02, rel=1e-3)


def test_the_time_limit_counts_from_the_commands_start() -> None:
    from trainer.config import TrainConfig
    from trainer.pipeline import _FINISH_RESERVE_S, time_limit_s

    config = TrainConfig(time_limit_min=14)
    fresh = time_limit_s(config, started=1000.0, now=1000.0)
    slow_read = time_limit_s(config, started=1000.0, now=1000.0 + 120)  # two minutes reading a big package
    assert fresh == 14 * 60 - _FINISH_RESERVE_S and slow_read == fresh - 120  # type: ignore[operator]
    assert time_limit_s(TrainConfig(epochs=5), 0.0, 10.0) is None  # --epochs N trains exactly N


def test_a_run_cut_by_a_slow_first_epoch_gets_epochs_back_but_never_past_the_plan() -> None:
    control = RunControl(epochs=20, steps_per_epoch=50, limit_s=600.0)
    control.timed(1, 60.0)  # the first epoch is slow (warm-up): 20 epochs would take 20 minutes
    assert control.epochs == 10 and control.time_cut
    control.timed(4, 120.0)  # then 20 s per epoch: 4 + 480 s / 20 s fits, capped by nothing yet
    assert control.epochs > 10 and "faster than estimated" in control.notes[-1]
    fast = RunControl(epochs=20, steps_per_epoch=50, limit_s=600.0)
    fast.timed(1, 60.0)
    fast.timed(5, 65.0)  # very fast now: back to the plan, not beyond it
    assert fast.epochs == 20


def test_evaluation_time_is_not_counted_as_training_pace() -> None:
    control = RunControl(epochs=30, steps_per_epoch=50, limit_s=600.0, eval_every=1)
    for epoch in range(1, 6):
        control.scored(epoch, 0.1 * epoch, 10.0)  # improving; each evaluation takes 10 s
    control.timed(5, 5 * 10.0 + 5 * 10.0)  # 10 s training + 10 s evaluation per epoch
    # 30 epochs: 100 + 25 x (10 + 10) = 600 s: fits exactly (counting evaluations twice, 850 s, cut it)
    assert control.epochs == 30 and not control.notes


def test_a_stalled_run_is_not_given_epochs_back() -> None:
    control = RunControl(epochs=40, steps_per_epoch=50, limit_s=600.0, eval_every=1)
    control.timed(1, 60.0)
    cut = control.epochs
    for epoch in range(2, 6):
        control.scored(epoch, 0.5, 1.0)  # no improvement: wound down after 3 stale evaluations
    assert control.winding_down
    wound = control.epochs
    control.timed(6, 70.0)  # very fast now, but validation has stalled
    assert control.epochs == wound <= cut


def test_the_first_evaluations_graph_tracing_is_not_charged_to_every_later_one() -> None:
    control = RunControl(epochs=30, steps_per_epoch=50, limit_s=600.0, eval_every=1)
    control.scored(1, 0.1, 60.0)  # the first evaluation traces the inference graph
    control.scored(2, 0.2, 5.0)
    control.timed(2, 2 * 10.0 + 65.0)  # 10 s of training per epoch
    # 28 more epochs at 10 s + 28 evaluations at 5 s: 85 + 420 = 505 s fits; charged 60 s each it would not
    assert control.epochs == 30 and not control.notes
