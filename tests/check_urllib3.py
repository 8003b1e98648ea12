"""Fail the install if urllib3 is not the genuine one (grafana-client >= 4 swaps in urllib3-future)."""

import sys
from importlib import metadata


def main() -> int:
    names = {dist.metadata["Name"].lower() for dist in metadata.distributions()}
    if "urllib3-future" in names:
        print("urllib3-future is installed: it replaces urllib3 under minio and influxdb-client. "
              "Keep grafana-client < 4 (see pyproject.toml).", file=sys.stderr)
        return 1
    import urllib3

    if not urllib3.__file__ or "urllib3_future" in urllib3.__file__:
        print(f"urllib3 resolves to {urllib3.__file__}, not the genuine package", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
