"""Logging in and out. No password set at install means nobody gets in, with a message saying how."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

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
        return render_template("auth/login.html", no_password=True, env=panel.settings.password_env), 503
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
