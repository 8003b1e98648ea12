"""Unlabelled frames for pre-training: a folder of captures or a dataset package (labels ignored).

Kept apart from trainer/pretrain.py so a wrong folder is reported before TensorFlow loads.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from trainer.errors import PretrainError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def load_frames(source: Path, limit: int = 2000) -> list[np.ndarray]:
    """RGB frames from a folder of captures (recursively) or a dataset package (labels ignored)."""
    if source.is_file() and source.suffix == ".zip":
        from trainer.dataset import load_dataset_package

        return [s.image for s in load_dataset_package(source).samples[:limit]]
    if not source.is_dir():
        raise PretrainError(f"{source}: give a folder of captured frames or a dataset package (.zip)")
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    frames = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not frames:
        raise PretrainError(f"{source}: no readable images ({', '.join(IMAGE_SUFFIXES)}) found")
    return frames
