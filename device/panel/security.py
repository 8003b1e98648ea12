"""Login, CSRF and cookie hardening: a lab network is not a safe network.

The password is set at install time (environment variable, or a werkzeug hash file written by
`python -m device.panel set-password`), or on first start: the device prints a one-time setup code
in its log, and only someone who can read that log can create the password in the browser. Until
then no password works. Every state-changing request must carry the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, abort, current_app, redirect, request, session, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from device.web_settings import PanelSettings

log = logging.getLogger(__name__)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STREAM_PATHS = ("/stream.mjpg", "/snapshot.jpg", "/api/live")
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.static", "panel.static"})
# Bodies that are parsed whole in memory: url-encoded forms (werkzeug reads them at once, no
# MAX_FORM_MEMORY_SIZE for them) and JSON. Multipart files are spooled to disk and capped by
# panel.max_upload_mb; these get a small cap of their own, checked before a byte is read.
FORM_BODY_MAX = 1024 * 1024  # the panel's forms send a few KB
JSON_BODY_MAX = 4 * 1024 * 1024  # an annotation of 10,000 boxes is about 1 MB


def password_file(settings: PanelSettings, data_dir: Path) -> Path:
    return Path(settings.password_file) if settings.password_file else data_dir / "password.hash"


MIN_PASSWORD_LENGTH = 8


def env_password(settings: PanelSettings) -> str | None:
    """The password from the environment, or None when unset or too short (said in the log)."""
    plain = os.environ.get(settings.password_env)
    if plain and len(plain) < MIN_PASSWORD_LENGTH:
        log.error(
            "panel: %s is set but has %d characters; at least %d are needed, so it is ignored",
            settings.password_env, len(plain), MIN_PASSWORD_LENGTH,
        )
        return None
    return plain or None


def load_password_hash(settings: PanelSettings, data_dir: Path) -> str | None:
    """The hash to check logins against, or None when no password was set at install."""
    return load_password(settings, data_dir)[0]


def load_password(settings: PanelSettings, data_dir: Path) -> tuple[str | None, str | None]:
    """(hash to check logins against or None, the environment password it came from or None)."""
    plain = env_password(settings)
    if plain:
        return generate_password_hash(plain), plain
    path = password_file(settings, data_dir)
    if path.is_file():
        stored = path.read_text(encoding="utf-8").strip()
        return stored or None, None
    return None, None


def write_password_hash(path: Path, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the panel password needs at least {MIN_PASSWORD_LENGTH} characters")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(generate_password_hash(password) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _secret_key(data_dir: Path) -> str:
    """Persisted so logins survive a restart; created on first start with 0600 permissions."""
    path = data_dir / "secret.key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def new_setup_code() -> str:
    """A one-time code shown only in the device's log: proves the person at the browser owns the box."""
    raw = secrets.token_hex(4).upper()
    return f"{raw[:4]}-{raw[4:]}"


def same_secret(expected: str, given: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input (compare_digest refuses such str)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogatepass"))


def setup_banner(code: str, password_env: str) -> str:
    """The setup code framed so it stands out in a scrolling log (plain text: log files get no colour codes)."""
    rule = "=" * 72
    return (
        f"\n{rule}\n  PANEL SETUP CODE:  {code}\n"
        "  No panel password is set yet. Open the panel (/panel/login) and create one with this\n"
        f"  one-time code, or set {password_env}, or run `python -m device.panel set-password`.\n{rule}"
    )


def setup_code_matches(expected: str | None, given: str) -> bool:
    return bool(expected) and same_secret(expected or "", given.strip().upper())


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def check_password(password: str) -> bool:
    stored = current_app.extensions["scopehive.panel"].password_hash
    return bool(stored) and check_password_hash(stored, password)


def _stream_allowed(settings: PanelSettings) -> bool:
    token = os.environ.get(settings.stream_token_env)
    given = request.args.get("token", "")
    return bool(session.get("user")) or bool(token and given and same_secret(token, given))


def _has_password() -> bool:
    return current_app.extensions["scopehive.panel"].password_hash is not None


SECURITY_HEADERS = {
    # Pages cannot be framed by another site (clickjacking); Grafana embeds the stream as <img>, not a frame.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # a ?token= URL never leaks to other sites through Referer
}


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _end_dead_session() -> None:
    """A cookie whose session ended (logout, password change, expiry) is treated as no login."""
    panel = current_app.extensions.get("scopehive.panel")
    if session.get("user") and panel is not None and not panel.sessions.alive(session.get("sid")):
        session.clear()


def parsed_body_cap() -> int | None:
    """The cap on this request's body when it is one parsed whole in memory (form or JSON), else None."""
    if request.mimetype == "application/x-www-form-urlencoded":
        return FORM_BODY_MAX
    if request.is_json:
        return JSON_BODY_MAX
    return None


def too_large_message(max_upload_mb: int) -> str:
    """What a 413 says: the form/JSON cap for such bodies, the upload limit for the rest."""
    cap = parsed_body_cap()
    if cap is not None:
        kind = "JSON" if request.is_json else "form"
        return f"the {kind} body is larger than the {cap // 1024} KB limit for {kind} requests: nothing was changed"
    return f"the upload is larger than the {max_upload_mb} MB limit: send fewer or smaller files (panel.max_upload_mb)"


def _cap_parsed_body() -> None:
    """A form or JSON body past its cap is refused from its Content-Length, unread. One sent without
    a length (chunked) is read here, at most one byte past the cap, and refused past it: werkzeug's
    own limit would cut it at the cap without a word (a half password, half a JSON document). 413
    either way; a body within the cap is parsed from what was read."""
    cap = parsed_body_cap()
    if cap is None:
        return
    if request.content_length is not None:
        if request.content_length > cap:
            raise RequestEntityTooLarge()
        return
    if request.max_content_length is not None:
        cap = min(cap, request.max_content_length)  # panel.max_upload_mb below the cap still rules
    request.max_content_length = cap + 1
    if len(request.get_data(cache=True)) > cap:
        raise RequestEntityTooLarge()


def init_app(app: Flask, settings: PanelSettings, data_dir: Path, panel_blueprints: set[str]) -> None:
    """Cookie flags, upload limit, login gate and CSRF check for the panel's blueprints.

    The stream, snapshot and live stats need a login (or the stream token) once a password is
    set; on a device without one (the out-of-the-box demo) they stay open, read-only.
    """
    if not app.secret_key:
        app.secret_key = _secret_key(data_dir)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024,
    )
    app.jinja_env.globals["csrf_token"] = csrf_token

    app.after_request(_security_headers)
    # First of all before-request hooks: the CSRF check below reads the form.
    app.before_request_funcs.setdefault(None, []).insert(0, _cap_parsed_body)

    @app.before_request
    def _gate() -> Response | None:
        _end_dead_session()
        gate_stream = settings.protect_stream and _has_password()
        if gate_stream and request.path.startswith(STREAM_PATHS) and not _stream_allowed(settings):
            abort(401, description="log in to the panel, or add ?token=<stream token> (panel.stream_token_env)")
        if request.blueprint not in panel_blueprints:
            return None
        if request.method not in SAFE_METHODS:
            sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
            if not sent or not same_secret(str(session.get("csrf", "")), sent):
                abort(400, description="the form expired or came from another site (CSRF check failed): reload the page and try again")
        if request.endpoint not in PUBLIC_ENDPOINTS and not session.get("user"):
            if request.path.startswith("/panel/api/"):
                abort(401, description="log in first")
            return redirect(url_for("auth.login", next=request.full_path))
        return None
