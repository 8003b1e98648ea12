"""Dashboards speak the panel's language: one colour per class."""

from __future__ import annotations


def test_class_series_use_the_colours_of_the_stream_and_the_panel() -> None:
    """`cell` is drawn in the same colour on the stream, in the annotator and in Grafana."""
    import json
    from pathlib import Path

    from device.colours import default_colour
    from device.render import class_colour, hex_to_bgr

    root = Path(__file__).resolve().parents[2] / "grafana" / "provisioning" / "dashboards" / "json"
    for name, title in (("microscope.json", "Objects per frame by class"), ("experiment.json", "Objects per frame by class (all devices)")):
        panels = json.loads((root / name).read_text())["panels"]
        panel = next(p for p in panels if p.get("title") == title)
        fixed = {o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"] for o in panel["fieldConfig"]["overrides"]
                 if o["properties"][0]["id"] == "color"}
        assert fixed == {f"^{c}( .*)?$": default_colour(i) for i, c in enumerate(["cell", "crystal", "debris"])}
    assert hex_to_bgr(default_colour(0)) == class_colour(0)
