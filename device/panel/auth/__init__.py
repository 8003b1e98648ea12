"""Logging in and out, and creating the password on first start with the one-time setup code."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from device.panel import security
from device.panel.base import state
from device.panel.security import check_password

bp = Blueprint("auth", __name__, template_folder="templates", url_prefix="/panel")


def _safe_next(target: str | None) -> str:
    """Only local paths: a login link must not bounce the user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("projects.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    panel = state()
    if panel.password_hash is None:
        return _first_password(panel)
    if request.method == "POST":
        if check_password(request.form.get("password", "")):
            session.clear()
            session.permanent = True
            session["user"] = "panel"
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong password.", "error")
        return render_template("auth/login.html", no_password=False), 401
    return render_template("auth/login.html", no_password=False)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))


def _first_password(panel: object) -> tuple[str, int] | Response:
    """No password yet: whoever holds the setup code from the device log may create it, once."""
    env = panel.settings.password_env  # type: ignore[attr-defined]
    if request.method != "POST":
        return render_template("auth/login.html", no_password=True, env=env), 200  # a page to fill in, not an outage
    password = request.form.get("new_password", "")
    if not security.setup_code_matches(panel.setup_code, request.form.get("setup_code", "")):  # type: ignore[attr-defined]
        flash("That setup code is not right: copy it from the device's log (it is printed at start).", "error")
        return render_template("auth/login.html", no_password=True, env=env), 403
    if password != request.form.get("repeat_password", ""):
        flash("The two passwords differ: type the same password twice.", "error")
        return render_template("auth/login.html", no_password=True, env=env), 400
    try:
        security.write_password_hash(security.password_file(panel.settings, panel.data_dir), password)  # type: ignore[attr-defined]
    except ValueError as exc:
        flash(f"{exc}.", "error")
        return render_template("auth/login.html", no_password=True, env=env), 400
    panel.password_hash = security.load_password_hash(panel.settings, panel.data_dir)  # type: ignore[attr-defined]
    panel.setup_code = None  # type: ignore[attr-defined]
    session.clear()
    session.permanent = True
    session["user"] = "panel"
    return redirect(_safe_next(request.args.get("next")))
