"""Write the dashboards as JSON into the provisioning folder: `python -m grafana.build [--check]`.

Output is sorted and indented so reviews show real changes only; `--check` exits 1 when the
committed JSON differs from a fresh build (CI runs the same comparison as a test).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from grafana import experiment, fleet, microscope

OUTPUT_DIR = Path(__file__).resolve().parent / "provisioning" / "dashboards" / "json"
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "microscope.json": microscope.dashboard,
    "fleet.json": fleet.dashboard,
    "experiment.json": experiment.dashboard,
}


def render(factory: Callable[[], Dashboard]) -> str:
    """One dashboard as the exact text written to disk."""
    return json.dumps(factory().build(), cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def build_all() -> dict[str, str]:
    """File name -> JSON text for every dashboard."""
    return {name: render(factory) for name, factory in DASHBOARDS.items()}


def stale_files(output_dir: Path = OUTPUT_DIR) -> list[str]:
    """Dashboards whose committed JSON is missing or differs from a fresh build."""
    return [
        name
        for name, content in build_all().items()
        if not (output_dir / name).exists() or (output_dir / name).read_text(encoding="utf-8") != content
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare, write nothing; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR, help="folder to write into")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        for name in stale:
            print(f"{args.out / name} is out of date: run `make dashboards` and commit the result", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in build_all().items():
        (args.out / name).write_text(content, encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
