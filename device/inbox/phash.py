"""Perceptual hash of a frame (DCT hash, 64 bits): near-identical frames hash within a few bits.

The frame is reduced to 32x32 grey by area means, its 2-D DCT taken, and the 8x8 lowest
frequencies (less the DC term's influence: the median decides) give one bit each. Noise, JPEG
and small brightness changes move few bits; another field of view moves about half."""

from __future__ import annotations

import cv2
import numpy as np

SIDE, LOW = 32, 8


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(SIDE)


def _grey_small(image: np.ndarray) -> np.ndarray:
    """32x32 grey block means (OpenCV's area resize: ~1 ms on a 1280x960 frame, where numpy's
    float64 copy of the whole frame took ~29 ms on the loop's thread)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA if min(h, w) >= SIDE else cv2.INTER_NEAREST)
    small = small.astype(np.float64)
    return small if small.ndim == 2 else small.mean(axis=2)


def phash(image: np.ndarray) -> int:
    """The frame's 64-bit DCT hash (grey or colour, any bit depth)."""
    coeffs = (_DCT @ _grey_small(image) @ _DCT.T)[:LOW, :LOW].ravel()
    bits = coeffs > np.median(coeffs[1:])
    return int(np.packbits(bits).view(">u8")[0])


def distances(code: int, codes: np.ndarray) -> np.ndarray:
    """Hamming distance of `code` to each of `codes` (uint64)."""
    if len(codes) == 0:
        return np.zeros(0, np.int64)
    xor = np.bitwise_xor(codes.astype(np.uint64), np.uint64(code))
    return np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1).astype(np.int64)
