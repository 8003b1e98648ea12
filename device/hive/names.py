"""How a bundle is named on a hive server, shared by the device (client) and `trainer serve`."""

from __future__ import annotations

import re

from device.models.bundle import ModelCard

JPEG_INPUT = "jpeg"  # BYTES [1]: the fitted frame, JPEG-encoded; the server decodes and normalises


def triton_model_name(card: ModelCard, transport: str = "tensor") -> str:
    """`<name>.<version>` (and `_jpeg` for the JPEG entry point): another version on the server
    is another name, so a device never gets answers from a model it did not ask for."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{card.name}.{card.version}")
    return f"{base}_jpeg" if transport == "jpeg" else base


def served_versions(card: ModelCard, names: list[str]) -> list[str]:
    """The names on a server that belong to `card`'s model but another version (for the message)."""
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", card.name) + "."
    return sorted(n for n in names if n.startswith(prefix) and not n.endswith("_jpeg"))
