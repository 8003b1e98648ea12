"""What a person or a bundle typed never becomes markup or a formula in the downloads: the HTML
report escapes every field (a `<script>` name is text), CSV text cells that a spreadsheet would run
as a formula start with a quote (OWASP), numbers stay numbers, and bidirectional overrides are
refused where the names are typed."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydantic import ValidationError

from device.experiments.report import frames_csv, html_report, objects_csv
from device.experiments.store import Experiment, ExperimentRequest, ExperimentStore
from device.experiments.summary import summarise

SCRIPT = "<script>alert(1)</script>"
FIELDS = {"name": SCRIPT, "sample": "<img src=x onerror=alert(2)>", "operator": '"><svg onload=alert(3)>',
          "objective": "<b>40x</b>", "notes": "</td></tr></table><script>alert(4)</script>"}
FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


class Tags(HTMLParser):
    """Every start tag of a document, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _experiment(tmp_path: Path, model: str = "peaks", cls: str = "cell") -> tuple[ExperimentStore, Experiment]:
    store = ExperimentStore(tmp_path / "experiments.sqlite")
    provenance = {"software": "1.0", "source": "<script>alert(5)</script>", "model": {"name": "<i>m</i>", "version": "1"}}
    experiment = store.start(ExperimentRequest(**FIELDS), "<b>scope</b>", "<u>lab</u>", provenance)
    counts = json.dumps({cls: 1})
    store.add_record([(experiment.id, 1_000_000, 1, "ok", 40.0, 0.0, 0.0, 1, counts, model, "=1+1", 0.5, 0.1, None, None, None)],
                     [(experiment.id, 1_000_000, cls, -3.5, 2.0, 10.0, 12.0, 6.75, 5.0, 33.75, 0.9)])
    return store, store.stop()


def test_every_typed_field_of_the_report_is_text(tmp_path: Path) -> None:
    store, experiment = _experiment(tmp_path, cls="<script>alert(6)</script>")
    summary = summarise(experiment, store.frames(experiment.id), store.objects(experiment.id))
    html = html_report(experiment, summary)
    parsed = Tags()
    parsed.feed(html)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "b" not in parsed.tags and "i" not in parsed.tags
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = "".join(parsed.text)
    for value in [*FIELDS.values(), "<b>scope</b>", "<u>lab</u>", "<script>alert(5)</script>", "<script>alert(6)</script>"]:
        assert value in text, value  # shown as the text it is
    assert parsed.tags.count("svg") >= 2 and parsed.tags.count("table") >= 3  # the report's own markup is intact


@pytest.mark.parametrize("formula", FORMULAS)
def test_csv_text_cells_never_start_a_formula(tmp_path: Path, formula: str) -> None:
    store, experiment = _experiment(tmp_path, model=formula, cls=formula)
    frames = list(csv.DictReader(io.StringIO(frames_csv(store.frames(experiment.id), [formula]))))
    objects = list(csv.DictReader(io.StringIO("".join(objects_csv(store.objects(experiment.id))))))
    # What a spreadsheet reads: text starting with a quote, the rest of the cell as typed.
    assert frames[0]["model"] == "'" + formula and frames[0]["model_version"] == "'=1+1"
    assert objects[0]["class"] == "'" + formula
    assert float(objects[0]["x1"]) == -3.5 and objects[0]["x1"] == "-3.5"  # a negative number stays a number
    assert frames[0]["count"] == "1" and frames[0][f"count_{formula}"] == "1"


def test_plain_names_are_unchanged_in_csv(tmp_path: Path) -> None:
    store, experiment = _experiment(tmp_path, model="peaks v2", cls="cell")
    (frame,) = csv.DictReader(io.StringIO(frames_csv(store.frames(experiment.id), ["cell"])))
    assert frame["model"] == "peaks v2" and frame["analysed"] == "ok" and frame["time_utc"].startswith("1970-01-01")


@pytest.mark.parametrize("field", ["name", "sample", "operator", "objective", "notes"])
@pytest.mark.parametrize("char", ["\u202e", "\u202d", "\u2066", "\u200f"])
def test_bidirectional_overrides_are_refused(tmp_path: Path, field: str, char: str) -> None:
    store = ExperimentStore(tmp_path / "experiments.sqlite")
    fields = {"name": "smear", field: f"report{char}fdp.exe"}
    with pytest.raises(ValidationError, match=f"bidirectional control character U\\+{ord(char):04X}"):
        ExperimentRequest(**fields)
    assert store.recent() == []
