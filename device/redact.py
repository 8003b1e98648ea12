"""Credentials never leave the device in text: camera URIs, errors, events and log lines are redacted.

`rtsp://user:secret@cam/stream` becomes `rtsp://***@cam/stream`; GStreamer-style `user-pw=secret`
and `password=secret` become `user-pw=***`. Applied where the text is made (source names, capture
errors, device events) and once more on every log record, so a message built elsewhere is covered too.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s?#]+@")
_SECRET_OPTION = re.compile(r"(?i)\b(user-pw|password|passwd|pwd|token)=([^\s&!\"']+)")
SECRET_PARAMETERS = frozenset({"user-pw", "password", "passwd", "pwd", "token"})


def redact(text: str) -> str:
    """The text with URL user-info and password options replaced by ***."""
    return _SECRET_OPTION.sub(r"\1=***", _USERINFO.sub(r"\1***@", text))


def redact_query(query: str) -> str:
    """A raw query string with the value of every secret parameter replaced by ***.

    The name is compared as the web framework will read it, percent- and plus-decoded: `tok%65n=`
    and `TOKEN=` are both `token`. Matching the raw text (what `redact` does) missed them."""
    parts = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        secret = sep and unquote_plus(name).strip().lower() in SECRET_PARAMETERS
        parts.append(f"{name}=***" if secret else part)
    return redact("&".join(parts))


def redact_request_target(path: str, query: str) -> str:
    """`path?query` for a log line: the query's secrets redacted (see redact_query), the path as redact."""
    return redact(path) + (f"?{redact_query(query)}" if query else "")


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the formatted message (and exception text) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
        return True


def redact_logging(root: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on every handler of the root logger (after logging.basicConfig)."""
    for handler in (root or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
