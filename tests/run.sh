#!/usr/bin/env bash
# The test run behind `make test`: start real services on loopback, lint, typecheck, test, stop.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"
export SCOPEHIVE_TEST_INFLUX_V1="http://127.0.0.1:18086"
export SCOPEHIVE_TEST_INFLUX_URL="http://127.0.0.1:18087"
mkdir -p artifacts

bash tests/services/services.sh start || exit 1
trap 'bash tests/services/services.sh stop' EXIT

ruff check device trainer grafana tests bench || exit 1
mypy device trainer grafana || exit 1
# device and trainer also run on JetPack 6's Python 3.10 (the dashboard generator needs 3.11)
mypy --python-version 3.10 device trainer || exit 1
pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"
