#!/usr/bin/env bash
# Start or stop the real services the tests talk to, on loopback only:
#   InfluxDB 1.x  http://127.0.0.1:18086  (InfluxQL, /write)
#   nginx         http://127.0.0.1:18087  (InfluxDB 2 write API in front of it, for influxdb-client)
# Usage: services.sh start|stop|status
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
var="${SCOPEHIVE_VAR:-$root/var/services}"

render() { sed "s#@VAR@#$var#g" "$here/$1" > "$var/$1"; }

wait_http() {
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "services.sh: $1 did not answer in 20 s; see $var/*.log" >&2
  return 1
}

start() {
  command -v influxd >/dev/null || { echo "influxd missing: run 'make system-deps'" >&2; exit 1; }
  command -v nginx >/dev/null || { echo "nginx missing: run 'make system-deps'" >&2; exit 1; }
  mkdir -p "$var/influxdb" "$var/nginx"
  render influxdb.conf
  render nginx.conf
  if ! curl -fsS -o /dev/null http://127.0.0.1:18086/ping 2>/dev/null; then
    nohup influxd -config "$var/influxdb.conf" > "$var/influxd.log" 2>&1 &
    echo $! > "$var/influxd.pid"
  fi
  wait_http http://127.0.0.1:18086/ping
  if ! curl -fsS -o /dev/null http://127.0.0.1:18087/ping 2>/dev/null; then
    nginx -c "$var/nginx.conf" -p "$var/nginx"
  fi
  wait_http http://127.0.0.1:18087/ping
  echo "services up: influxdb 127.0.0.1:18086, v2 proxy 127.0.0.1:18087"
}

stop() {
  if [ -f "$var/nginx/nginx.pid" ]; then nginx -c "$var/nginx.conf" -p "$var/nginx" -s stop 2>/dev/null || true; fi
  if [ -f "$var/influxd.pid" ]; then kill "$(cat "$var/influxd.pid")" 2>/dev/null || true; rm -f "$var/influxd.pid"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) curl -fsS http://127.0.0.1:18086/ping && curl -fsS http://127.0.0.1:18087/ping && echo ok ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
