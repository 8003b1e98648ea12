"""Synthetic microscopes for other kinds of sample, chosen by name (`synthetic://?mode=blood`).

The default mode (`brightfield`, device/sources/synthetic.py) is a moving grey sample of cells,
crystals and debris. The modes here imitate what labs actually image, so a model trained on the
synthetic microscope meets the same difficulties as on real samples: a stained blood smear
(`blood`), fluorescent nuclei (`fluorescence`) and phase contrast (`phase`).

Each is a static sample (as on a slide): `new_scene()` draws and renders it once, noise-free;
`read()` adds fresh camera noise, so frames are cheap. The truth follows one rule in every mode:
the tight extent of what is drawn, clipped to the frame, labelled unless less than 40 % of the
object is inside the frame (as the brightfield mode counts edge objects).
"""

from __future__ import annotations

from pydantic import BaseModel

from device.sources.synthetic import SyntheticConfig, SyntheticMicroscope
from device.sources.synthetic_base import ModalityConfig, ModalityScope
from device.sources.synthetic_blood import BloodConfig, BloodSmear
from device.sources.synthetic_fluorescence import FluorescenceConfig, FluorescentNuclei
from device.sources.synthetic_phase import PhaseConfig, PhaseContrast


def _modes() -> dict[str, tuple[type[BaseModel], type]]:
    return {
        "brightfield": (SyntheticConfig, SyntheticMicroscope),
        "blood": (BloodConfig, BloodSmear),
        "fluorescence": (FluorescenceConfig, FluorescentNuclei),
        "phase": (PhaseConfig, PhaseContrast),
    }


MODES = ("brightfield", "blood", "fluorescence", "phase")


def mode_config(mode: str, options: dict[str, object]) -> SyntheticConfig | ModalityConfig:
    """The validated config of a mode; ValueError names the known modes; ValidationError for options."""
    modes = _modes()
    if mode not in modes:
        raise ValueError(f"unknown synthetic mode '{mode}': choose one of {', '.join(MODES)}")
    return modes[mode][0].model_validate(options)  # type: ignore[return-value]


def create_scope(config: BaseModel) -> SyntheticMicroscope | ModalityScope:
    """The microscope for a config made by `mode_config` (the config's type picks the mode)."""
    for config_type, scope_type in _modes().values():
        if type(config) is config_type:
            return scope_type(config)  # type: ignore[no-any-return]
    raise TypeError(f"no synthetic mode takes a {type(config).__name__}")


def mode_classes(mode: str) -> tuple[str, ...]:
    return tuple(_modes()[mode][1].classes)  # type: ignore[attr-defined]
