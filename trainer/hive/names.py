"""The name of a bundle on a hive server: `<name>.<version>` (tensor in) and `<name>.<version>_jpeg`
(JPEG in). The device computes the same names (device/hive/names.py, kept equal by a test):
another version on the server is another name, so a device never gets another version's answers."""

from __future__ import annotations

import re

JPEG_INPUT = "jpeg"


def triton_model_name(name: str, version: str, transport: str = "tensor") -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{name}.{version}")
    return f"{base}_jpeg" if transport == "jpeg" else base
