"""Warm start: a new training begins from the weights of the model the device runs.

Every bundle the trainer writes carries its Keras weights (`warm_start.weights.h5`) and what they
fit (`warm_start.json`: the network's shape and its classes). A job whose classes are the running
model's, or a superset of them, starts from those weights by default: the backbone, the neck and
the box head are copied, and the class heatmap channel of every class both models know; a new
class starts from the usual prior. Anything else (another width multiplier, a class the new
project dropped, a bundle from before warm start) is a cold start, and the job says why.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trainer.errors import WeightsError

WEIGHTS = "warm_start.weights.h5"
SPEC = "warm_start.json"


class WarmStartError(WeightsError):
    """The weights cannot seed this training; the message says why."""


def source_files(weights: Path, spec: Any, classes: list[str]) -> dict[str, bytes | Path]:
    """The bundle files that let a later training start from this run's best weights."""
    return {WEIGHTS: weights, SPEC: json.dumps({"model": {**asdict(spec), "weights": None}, "classes": list(classes)}, indent=1).encode()}


def read_source(bundle: Path) -> dict[str, Any]:
    if not (bundle / WEIGHTS).is_file() or not (bundle / SPEC).is_file():
        raise WarmStartError("the running model's bundle carries no training weights (it was trained before warm start "
                             "existed, or outside ScopeHive's trainer)")
    try:
        source = json.loads((bundle / SPEC).read_text())
        model, classes = source["model"], [str(c) for c in source["classes"]]
        float(model["width_multiplier"]), int(model["head_channels"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WarmStartError(f"the running model's {SPEC} is unreadable ({exc})") from None
    return {"model": model, "classes": classes}


def check(bundle: Path, classes: list[str], width_multiplier: float) -> dict[str, Any]:
    """The source's description if its weights can seed a model of `classes` at `width_multiplier`."""
    source = read_source(bundle)
    dropped = [c for c in source["classes"] if c not in classes]
    if dropped:
        raise WarmStartError(f"the running model knows class(es) {', '.join(dropped)} that this project does not: "
                             "warm start needs the same classes or more")
    if abs(float(source["model"]["width_multiplier"]) - width_multiplier) > 1e-9:
        raise WarmStartError(f"the running model has width multiplier {source['model']['width_multiplier']}, this training "
                             f"{width_multiplier}: another network shape")
    return source


def load_into(raw: Any, bundle: Path, classes: list[str]) -> str:
    """Copy the source weights into the freshly built `raw` model (same layer names); returns what was done."""
    from trainer.model import ModelSpec, build_raw_model

    source = read_source(bundle)
    spec = source["model"]
    old = build_raw_model(ModelSpec(len(source["classes"]), float(spec["width_multiplier"]), int(spec["head_channels"])))
    old.load_weights(bundle / WEIGHTS)
    for layer in raw.layers:
        weights = old.get_layer(layer.name).get_weights()
        if layer.name == "heatmap":
            kernel, bias = layer.get_weights()
            for new_index, name in enumerate(classes):
                if name in source["classes"]:
                    old_index = source["classes"].index(name)
                    kernel[..., new_index] = weights[0][..., old_index]
                    bias[new_index] = weights[1][old_index]
            weights = [kernel, bias]
        if weights:
            layer.set_weights(weights)
    new = [c for c in classes if c not in source["classes"]]
    return "started from the running model's weights" + (f" (new class(es) {', '.join(new)} start fresh)" if new else "")
