"""Where the panel keeps images, annotations and models: one small interface, two backends.

`LocalStorage` (a folder, the embedded default) and `S3Storage` (any S3-compatible endpoint
through the minio SDK) behave the same, so everything above them is tested once and runs on
either. `open_storage(url)` picks the backend from a URL; the panel reaches the open store with
`get_storage()` (registered by `init_app`, as in Flask's tutorial).
"""

from __future__ import annotations

from device.storage.base import Storage, StorageError, check_key
from device.storage.factory import get_storage, init_app, open_storage
from device.storage.local import LocalStorage

__all__ = [
    "LocalStorage",
    "Storage",
    "StorageError",
    "check_key",
    "get_storage",
    "init_app",
    "open_storage",
]
