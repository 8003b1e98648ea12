"""The panel: projects, capture, annotation, datasets and models in the browser.

`init_app(app)` is called by the device's app factory (device/web.py) to add the panel's
blueprints, login and CSRF protection.
"""

from flask import Flask


def init_app(app: Flask) -> None:
    """Placeholder until the panel lands (issue 5): adds nothing yet."""
