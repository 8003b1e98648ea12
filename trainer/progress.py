"""Progress a person (console bar, TensorBoard) and a web page (progress.json) can follow.

progress.json is replaced atomically each epoch, so a poller never reads half a file:
{state, epoch, epochs, loss, val, val_epoch, best, final, eta_s, elapsed_s, updated, message, notes, history}.

Which figure is which: `val` is the latest validation score (of epoch `val_epoch`'s weights);
`best` the epoch whose weights are kept; `final`, once done, is the report's figure (model.json
metrics): the kept weights scored again on the validation split, named with set and weights.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tensorflow as tf
from tensorflow.core.framework import summary_pb2
from tqdm import tqdm

# What tf.summary.scalar writes, without needing the tensorboard package installed to write it.
_SCALAR = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def _scalar(tag: str, value: float) -> None:
    tf.summary.write(tag, tf.constant(float(value), tf.float32), metadata=_SCALAR)


class ProgressReporter:
    def __init__(self, out_dir: Path, epochs: int, steps_per_epoch: int, quiet: bool = False) -> None:
        self.path = out_dir / "progress.json"
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.started = time.monotonic()
        self.state: dict[str, Any] = {"state": "starting", "epoch": 0, "epochs": epochs, "loss": None, "val": None}
        # In a terminal the bar redraws ten times a second; in a log file (a container's output)
        # every 30 s, so a run leaves a readable trail instead of a megabyte of redraws.
        interval = 0.1 if sys.stderr.isatty() else 30.0
        self.bar = tqdm(total=epochs * steps_per_epoch, unit="step", disable=quiet, file=sys.stderr,
                        dynamic_ncols=True, mininterval=interval)
        self.writer = tf.summary.create_file_writer(str(out_dir / "tensorboard"))
        self.write()

    def step(self, loss: float, epoch: int) -> None:
        self.bar.set_description(f"epoch {epoch}/{self.epochs}", refresh=False)
        self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        self.bar.update(1)

    def epoch_done(self, epoch: int, losses: dict[str, float], val: dict[str, float] | None) -> None:
        elapsed = time.monotonic() - self.started
        eta = elapsed / epoch * (self.epochs - epoch)
        self.state.update(state="training", epoch=epoch, loss=losses["total"], eta_s=round(eta, 1))
        if val is not None:
            self.state["val"] = val
            self.state["val_epoch"] = epoch
        # the curves a web page draws (loss every epoch, validation where it was scored)
        self.state.setdefault("history", []).append({"epoch": epoch, "loss": losses["total"], **(val or {})})
        with self.writer.as_default(step=epoch):
            for key, value in losses.items():
                _scalar(f"loss/{key}", value)
            for key, value in (val or {}).items():
                _scalar(f"val/{key}", value)
        self.writer.flush()
        self.write()

    def best(self, epoch: int, val: dict[str, float]) -> None:
        """These weights are now the ones the bundle will carry (best on validation so far)."""
        self.state["best"] = {"epoch": epoch, **val, "set": "validation"}

    def set_epochs(self, epochs: int) -> None:
        """The run was shortened (early stop, time limit): the bar and ETA follow."""
        self.epochs = epochs
        self.state["epochs"] = epochs
        self.bar.total = epochs * self.steps_per_epoch
        self.bar.refresh()

    def note(self, text: str) -> None:
        """A line a person should read (the plan, early stopping), above the bar; kept in progress.json."""
        self.bar.write(text, file=sys.stderr)
        self.state.setdefault("notes", []).append(text)
        self.write()

    def set_state(self, state: str, message: str = "", **extra: Any) -> None:
        self.state.update(state=state, message=message, **extra)
        self.write()

    def write(self) -> None:
        self.state["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.state["updated"] = datetime.now(timezone.utc).isoformat()
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.path)

    def close(self) -> None:
        self.bar.close()
        self.writer.close()
