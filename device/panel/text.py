"""Small wording helpers shared by the panel's pages and messages."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """'1 image', '3 images', '0 images' (pass `many` for irregular nouns)."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"
