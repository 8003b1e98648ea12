"""Logging in and out, and creating the password on first start with the one-time setup code."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

import device.panel.security as security
from device.panel.base import state
from device.panel.security import check_password

bp = Blueprint("auth", __name__, template_folder="templates", url_prefix="/panel")
Page = str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]


def _safe_next(target: str | None) -> str:
    """Only local paths: a login link must not bounce the user to another site.

    Browsers drop tabs and line breaks from URLs and read a backslash as a slash, so
    `/%09/evil.example` would become `//evil.example`: anything but printable ASCII is refused.
    """
    if target and all(0x21 <= ord(ch) < 0x7F for ch in target) and "\\" not in target:
        parts = urlsplit(target)
        if target.startswith("/") and not target.startswith("//") and not parts.scheme and not parts.netloc:
            return target
    return url_for("projects.index")


def _client() -> str:
    return request.remote_addr or "unknown"


def _too_many(wait: float, no_password: bool, env: str = "") -> tuple[str, int, dict[str, str]]:
    seconds = max(1, int(wait + 0.999))
    flash(f"Too many wrong tries: wait {seconds} seconds, then try again.", "error")
    page = render_template("auth/login.html", no_password=no_password, env=env)
    return page, 429, {"Retry-After": str(seconds)}


def _log_in(panel: Any) -> None:
    session.clear()
    session.permanent = True
    session["user"] = "panel"
    session["sid"] = panel.sessions.start()


@bp.route("/login", methods=["GET", "POST"])
def login() -> Page:
    panel = state()
    if panel.password_hash is None:
        return _first_password(panel)
    if request.method == "POST":
        wait = panel.login_throttle.retry_after(_client())
        if wait > 0:
            return _too_many(wait, no_password=False)
        if check_password(request.form.get("password", "")):
            panel.login_throttle.succeeded(_client())
            _log_in(panel)
            return redirect(_safe_next(request.args.get("next")))
        panel.login_throttle.failed(_client())
        flash("Wrong password.", "error")
        return render_template("auth/login.html", no_password=False), 401
    return render_template("auth/login.html", no_password=False)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Ends the session on the server too: a copy of the cookie stops working."""
    state().sessions.end(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"))


def _first_password(panel: Any) -> Page:
    """No password yet: whoever holds the setup code from the device log may create it, once."""
    env = panel.settings.password_env
    if request.method != "POST":
        return render_template("auth/login.html", no_password=True, env=env), 200  # a page to fill in, not an outage
    wait = panel.setup_throttle.retry_after(_client())
    if wait > 0:
        return _too_many(wait, no_password=True, env=env)
    password = request.form.get("new_password", "")
    if not security.setup_code_matches(panel.setup_code, request.form.get("setup_code", "")):
        panel.setup_throttle.failed(_client())
        flash("That setup code is not right: copy it from the device's log (it is printed at start).", "error")
        return render_template("auth/login.html", no_password=True, env=env), 403
    if password != request.form.get("repeat_password", ""):
        flash("The two passwords differ: type the same password twice.", "error")
        return render_template("auth/login.html", no_password=True, env=env), 400
    try:
        security.write_password_hash(security.password_file(panel.settings, panel.data_dir), password)
    except ValueError as exc:
        flash(f"{exc}.", "error")
        return render_template("auth/login.html", no_password=True, env=env), 400
    panel.password_hash = security.load_password_hash(panel.settings, panel.data_dir)
    panel.setup_code = None
    panel.sessions.bind_password(panel.password_hash, None)
    _log_in(panel)
    return redirect(_safe_next(request.args.get("next")))
