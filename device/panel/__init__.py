"""The panel: projects, capture, annotation, datasets and models in the browser.

`init_app(app)` is called by the device's app factory (device/web.py) to add the panel's
blueprints, login and CSRF protection. Settings come from `app.config["SCOPEHIVE"].panel`; the
running device is reached only through `app.extensions["scopehive.runtime"]` (device/web_protocol.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from flask import Blueprint, Flask, redirect, send_from_directory, url_for
from werkzeug.wrappers import Response

import device.panel.security as security
import device.panel.workspace as workspace
from device import storage as storage_ext
from device import web_json
from device.panel.modelstore import ModelStore
from device.panel.sessions import SessionRegistry
from device.panel.store import ProjectStore
from device.panel.throttle import Throttle
from device.web_settings import PanelSettings

log = logging.getLogger(__name__)
EXTENSION_KEY = "scopehive.panel"


@dataclass
class PanelState:
    """What every panel request needs; one per app, in app.extensions['scopehive.panel']."""

    settings: PanelSettings
    data_dir: Path
    projects: ProjectStore
    models: ModelStore
    password_hash: str | None
    sessions: SessionRegistry
    setup_code: str | None = None  # one-time code, printed in the device log, to create the password
    login_throttle: Throttle = field(default_factory=lambda: Throttle(per_client=5, overall=30, window_s=60.0))
    setup_throttle: Throttle = field(default_factory=lambda: Throttle(per_client=5, overall=20, window_s=600.0))


def _blueprints() -> list:  # type: ignore[type-arg]
    from device.panel.annotate import bp as annotate
    from device.panel.auth import bp as auth
    from device.panel.base import bp as base
    from device.panel.capture import bp as capture
    from device.panel.datasets import bp as datasets
    from device.panel.experiments import bp as experiments
    from device.panel.inbox import bp as inbox
    from device.panel.live import bp as live
    from device.panel.models import bp as models
    from device.panel.projects import bp as projects
    from device.panel.tracking import bp as tracking
    from device.panel.training import bp as training

    return [base, auth, projects, capture, annotate, datasets, models, live, experiments, tracking, training, inbox]


def init_app(app: Flask) -> None:
    """Wire storage, stores, security and the blueprints into `app` (in that order)."""
    web_json.install(app)  # the panel's JSON in and out is standard JSON (device/jsonsafe.py)
    config = app.config.get("SCOPEHIVE") or app.config.get("SCOPEHIVE_CONFIG")
    settings: PanelSettings = getattr(config, "panel", None) or PanelSettings()
    data_dir = Path(getattr(config, "data_dir", "var/device")) / "panel"
    data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.storage or f"file://{(data_dir / 'store').resolve()}"
    try:
        store = storage_ext.open_storage(url, settings.s3_access_key_env, settings.s3_secret_key_env)
    except storage_ext.StorageError as exc:
        # The stream and metrics must keep running when the object store is down or misconfigured.
        log.error("panel disabled: %s", exc)
        app.register_blueprint(_unavailable(f"The panel cannot open its storage: {exc}. Fix panel.storage and restart."))
        return
    storage_ext.init_app(app, store)
    password_hash, env_password = security.load_password(settings, data_dir)
    setup_code = None if password_hash is not None else security.new_setup_code()
    if setup_code is not None:
        log.warning(security.setup_banner(setup_code, settings.password_env))
    sessions = SessionRegistry(data_dir / "sessions.json", settings.session_hours * 3600)
    sessions.bind_password(password_hash, env_password)
    models = ModelStore(store, data_dir / "cache", data_dir.parent / "bundles")
    panel = PanelState(
        settings, data_dir, ProjectStore(store, settings.max_image_pixels), models, password_hash, sessions, setup_code,
    )
    _prune_models(panel)
    app.extensions[EXTENSION_KEY] = panel
    runtime = app.extensions.get("scopehive.runtime")
    workspace.ensure_demo_project(panel.projects, data_dir, runtime)
    workspace.push_colours(runtime, workspace.current_on_device(panel.projects, data_dir))
    app.url_map.strict_slashes = False  # /panel/capture/ and /panel/capture are the same page
    app.add_url_rule("/favicon.ico", "favicon", _favicon)
    blueprints = _blueprints()
    security.init_app(app, settings, data_dir, {bp.name for bp in blueprints})
    for bp in blueprints:
        app.register_blueprint(bp)
    if not any(rule.rule == "/" for rule in app.url_map.iter_rules()):
        app.add_url_rule("/", "panel_home", lambda: _home())
    if not any(rule.rule in ("/panel", "/panel/") for rule in app.url_map.iter_rules()):
        app.add_url_rule("/panel/", "panel_index", lambda: _home())  # the README's address of the panel


def _prune_models(panel: PanelState) -> None:
    """Unpacked bundles of models deleted earlier (or by an older version) give their disk back."""
    try:
        removed = panel.models.prune(panel.projects.list_projects())
    except storage_ext.StorageError as exc:
        log.warning("panel: could not check for unused model bundles (%s)", exc)
        return
    if removed:
        log.info("panel: removed %d unpacked model bundles that no model refers to", removed)


def _unavailable(message: str) -> Blueprint:
    bp = Blueprint("panel_unavailable", __name__, url_prefix="/panel")

    @bp.route("/", defaults={"rest": ""})
    @bp.route("/<path:rest>")
    def unavailable(rest: str) -> tuple[str, int, dict[str, str]]:
        return message, 503, {"Content-Type": "text/plain; charset=utf-8"}

    return bp


def _favicon() -> Response:
    """The panel's icon for browsers that ask for /favicon.ico (public, like the login page)."""
    return send_from_directory(Path(__file__).parent / "base" / "static", "favicon.svg", mimetype="image/svg+xml", max_age=86400)


def _home() -> Response:
    return redirect(url_for("projects.index"))
