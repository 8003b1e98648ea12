#!/bin/sh
# Start Grafana only with an admin password from the environment: never the built-in admin/admin.
set -eu
if [ -z "${GF_SECURITY_ADMIN_PASSWORD:-}" ] && [ -z "${GF_SECURITY_ADMIN_PASSWORD__FILE:-}" ]; then
  echo "scopehive-grafana: GF_SECURITY_ADMIN_PASSWORD is not set: set it (or GF_SECURITY_ADMIN_PASSWORD__FILE) in the environment (balena variables or docker-compose)" >&2
  exit 64
fi
if [ -z "${INFLUX_TOKEN:-}" ]; then
  echo "scopehive-grafana: INFLUX_TOKEN is not set: the datasource will only work with an InfluxDB without authentication" >&2
fi
exec "${GRAFANA_RUN:-/run.sh}" "$@"
