"""The Grafana image's files agree with each other: datasource uid, paths, variables, pins, secrets.

No Docker engine runs here, so the image is checked by reading its Dockerfile and provisioning
files the way Grafana and Docker will, and the entrypoint script is run for real with `sh`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from grafana.build import OUTPUT_DIR
from grafana.influxql import DATASOURCE_UID

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DOCKERFILE = (GRAFANA / "Dockerfile").read_text(encoding="utf-8")


def dockerfile_env() -> dict[str, str]:
    """ENV defaults baked into the image (the `ENV a=b \\` continuation form used there)."""
    block = re.search(r"^ENV (.+?)(?=^\S)", DOCKERFILE + "\nEND", re.S | re.M)
    assert block, "Dockerfile has no ENV block"
    pairs = re.findall(r"(\w+)=(\S*)", block.group(1).replace("\\\n", " "))
    return dict(pairs)


def test_datasource_is_influxql_with_the_uid_the_dashboards_use() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text(encoding="utf-8"))
    (source,) = config["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["url"] == "${INFLUX_URL}" and source["jsonData"]["dbName"] == "${INFLUX_DATABASE}"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUX_TOKEN}"


def test_every_variable_the_provisioning_expands_has_an_image_default() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in (GRAFANA / "provisioning").rglob("*.yaml"))
    used = set(re.findall(r"\$\{(\w+)\}", text))
    assert used == {"INFLUX_URL", "INFLUX_DATABASE", "INFLUX_TOKEN"}
    assert used <= set(dockerfile_env()), "Grafana would expand an unset variable to an empty string"


def test_dashboard_provider_reads_where_the_image_puts_the_json() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning/dashboards/scopehive.yaml").read_text(encoding="utf-8"))
    (provider,) = config["providers"]
    assert "COPY provisioning/dashboards/ /etc/grafana/provisioning/dashboards/" in DOCKERFILE
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards/" + OUTPUT_DIR.name
    assert OUTPUT_DIR.parent == GRAFANA / "provisioning/dashboards"
    home = dockerfile_env()["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (OUTPUT_DIR / Path(home).name).exists()


def test_image_is_pinned_and_lets_the_stream_panel_render_html() -> None:
    (base,) = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert re.fullmatch(r"grafana/grafana-oss:\d+\.\d+\.\d+", base), f"unpinned base image {base}"
    env = dockerfile_env()
    assert env["GF_PANELS_DISABLE_SANITIZE_HTML"] == "true"
    assert not any(key.startswith("GF_SECURITY_ADMIN") for key in env), "the admin password must come at run time"


def run_entrypoint(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "GRAFANA_RUN": "echo"}
    return subprocess.run(["sh", str(GRAFANA / "docker-entrypoint.sh"), "grafana", "server"], env={**base, **env},
                          capture_output=True, text=True, timeout=10)


def test_entrypoint_refuses_to_start_without_an_admin_password() -> None:
    done = run_entrypoint({"INFLUX_TOKEN": "t"})
    assert done.returncode == 64 and "GF_SECURITY_ADMIN_PASSWORD is not set" in done.stderr


def test_entrypoint_starts_grafana_with_a_password() -> None:
    done = run_entrypoint({"GF_SECURITY_ADMIN_PASSWORD": "pw", "INFLUX_TOKEN": "t"})
    assert done.returncode == 0 and done.stdout.strip() == "grafana server" and done.stderr == ""
    warned = run_entrypoint({"GF_SECURITY_ADMIN_PASSWORD": "pw"})
    assert warned.returncode == 0 and "INFLUX_TOKEN" in warned.stderr
