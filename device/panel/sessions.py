"""Server-side record of live logins, so logging out and changing the password end sessions.

The session cookie is signed, not stored: on its own a copied cookie would stay valid for its
whole lifetime, after logout and even after a restart with a new password. So every login gets a
random session id, kept in `<data_dir>/panel/sessions.json` (0600) until logout or expiry, and a
cookie counts only while its id is listed. The file also keeps the password hash the sessions were
opened under: when the device starts with another password, every session ends.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path

from werkzeug.security import check_password_hash

log = logging.getLogger(__name__)


class SessionRegistry:
    """Live session ids with their expiry (epoch seconds); every change is written atomically."""

    def __init__(self, path: Path, lifetime_s: float) -> None:
        self.path = path
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._sessions: dict[str, float] = {}
        self._password_hash = ""
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self._sessions = {str(k): float(v) for k, v in dict(raw.get("sessions") or {}).items()}
            self._password_hash = str(raw.get("password_hash") or "")
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.error("%s is unreadable (%s): every panel session is ended", self.path, exc)
            self._sessions = {}

    def _save(self) -> None:
        now = time.time()
        self._sessions = {k: v for k, v in self._sessions.items() if v > now}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"password_hash": self._password_hash, "sessions": self._sessions}, fh)
        os.replace(tmp, self.path)

    def start(self) -> str:
        """A new session id, valid for the lifetime (the cookie carries it)."""
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[sid] = time.time() + self.lifetime_s
            self._save()
        return sid

    def alive(self, sid: object) -> bool:
        if not isinstance(sid, str):
            return False
        with self._lock:
            return self._sessions.get(sid, 0.0) > time.time()

    def end(self, sid: object) -> None:
        with self._lock:
            if isinstance(sid, str) and self._sessions.pop(sid, None) is not None:
                self._save()

    def end_all(self) -> None:
        with self._lock:
            self._sessions = {}
            self._save()

    def bind_password(self, password_hash: str | None, plain: str | None) -> None:
        """End every session when the password differs from the one they were opened under.

        `plain` is the environment password (re-hashed with a new salt at every start), checked
        against the stored hash; a password file's hash is compared as it is.
        """
        with self._lock:
            old = self._password_hash
            same = bool(old) and (check_password_hash(old, plain) if plain else old == (password_hash or ""))
            if same:
                return
            if self._sessions:
                log.warning("panel: the password changed, so every existing login was ended")
            self._sessions = {}
            self._password_hash = password_hash or ""
            self._save()
