# ScopeHive: `make demo` runs the device on the built-in synthetic microscope; `make test` runs everything.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTHON ?= python3
# The hive inference server's own environment (PyTriton needs numpy < 2): `python -m trainer serve`.
HIVE_VENV ?= .venv-hive

.PHONY: help demo-port setup setup-device hive-env system-deps demo demo-model test lint typecheck unit bench bench-train dashboards clean

help:
	@echo "make demo     set up (device only) and run the live demo on http://127.0.0.1:8080 (PORT=... for another)"
	@echo "make test     set up everything, start InfluxDB + proxy on loopback, lint, typecheck, test"
	@echo "make bench    print the performance figures (bench/); make bench-train for the trainer's (about 80 min)"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Device-only environment: what an edge box needs (no TensorFlow).
$(VENV)/.device-stamp: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e ".[device]"
	touch $@

# Full environment: device + trainer + dashboards + test tools.
$(VENV)/.full-stamp: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e ".[device,trainer,dashboards,dev]"
	$(PY) -m tests.check_urllib3
	touch $@ $(VENV)/.device-stamp

$(HIVE_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(HIVE_VENV)
	$(HIVE_VENV)/bin/pip install -q --upgrade pip
	$(HIVE_VENV)/bin/pip install -q -e ".[hive]"
	touch $@

setup-device: $(VENV)/.device-stamp
hive-env: $(HIVE_VENV)/.stamp
setup: system-deps $(VENV)/.full-stamp $(HIVE_VENV)/.stamp

# Debian packages the tests use for real: InfluxDB 1.x, nginx (v2 write proxy), Chromium (browser tests),
# Aravis with its fake GigE Vision camera and GObject introspection (genicam:// tests).
system-deps:
	@missing=""; \
	command -v influxd >/dev/null || missing="$$missing influxdb"; \
	command -v nginx >/dev/null || missing="$$missing nginx-light"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v arv-fake-gv-camera-0.8 >/dev/null || missing="$$missing aravis-tools"; \
	test -f /usr/lib/python3/dist-packages/gi/__init__.py || missing="$$missing python3-gi"; \
	ls /usr/lib/*/girepository-1.0/Aravis-0.8.typelib >/dev/null 2>&1 || missing="$$missing gir1.2-aravis-0.8"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The demo listens on 127.0.0.1 only; `make demo PORT=8090` picks another port. The port is checked
# before the (long) first set-up, so a clash is reported at once.
PORT ?= 8080
demo: demo-port setup-device
	$(PY) -m device run --config device/demo.yaml --port $(PORT)

demo-port:
	@$(PYTHON) -c "import socket, sys; s = socket.socket(); \
	  r = s.connect_ex(('127.0.0.1', $(PORT))); s.close(); \
	  sys.exit(0 if r else 'port $(PORT) on 127.0.0.1 is already in use (another demo?): stop it, or run make demo PORT=8090')"

# The committed demo bundle: trained on 640x480 synthetic-microscope frames (denser than usual, for
# more objects per step) seen at 960x720 (upscaled: small specks need the pixels), scored on a
# separately seeded held-out set of default synthetic frames (metrics.held_out in model.json), and
# given its INT8 model for CPU boxes, compared on the same held-out set (model.json int8, metrics.int8).
# About 30 minutes on 2 CPU cores.
DEMO_DATA ?= var/demo-model
demo-model: $(VENV)/.full-stamp
	mkdir -p $(DEMO_DATA)
	$(PY) -c "from device.datasets.package import write_synthetic_package as w; \
	  w('$(DEMO_DATA)/train.zip', 200, seed=21, width=640, height=480, density=60); \
	  w('$(DEMO_DATA)/held_out.zip', 60, seed=909, width=640, height=480)"
	$(PY) -m trainer train $(DEMO_DATA)/train.zip --out device/models/demo --force \
	  --name synthetic-cells --epochs 30
	$(PY) -m trainer evaluate device/models/demo $(DEMO_DATA)/held_out.zip --record held_out
	$(PY) -m trainer export device/models/demo --int8 --package $(DEMO_DATA)/train.zip --held-out $(DEMO_DATA)/held_out.zip

# The suite states its budget: the 15 slowest tests close the report (README gives the totals).
test: setup
	bash tests/run.sh -n 2 --dist loadfile --durations=15

# The inner loop: no slow and no browser tests, no services needed beyond what they start.
unit: $(VENV)/.full-stamp
	bash tests/services/services.sh start
	$(VENV)/bin/pytest -q -m "not slow and not browser" --durations=10

lint: $(VENV)/.full-stamp
	$(VENV)/bin/ruff check device trainer grafana tests bench

typecheck: $(VENV)/.full-stamp
	$(VENV)/bin/mypy device trainer grafana

bench: setup
	$(PY) bench/synthetic_fps.py
	$(PY) bench/device_heldout.py
	$(PY) bench/cpu_layout.py
	cd bench && $(abspath $(PY)) device_backends.py && $(abspath $(PY)) device_loop.py
	bash tests/services/services.sh start && cd bench && $(abspath $(PY)) device_outbox.py

# The trainer's figures per synthetic modality (300 frames at 640x480 each, default CPU training): ~1 hour.
bench-train: setup
	$(PY) bench/train_step.py
	$(PY) bench/train_synthetic.py
	$(PY) bench/train_mixed_sizes.py
	$(PY) bench/pretrain_synthetic.py --labelled 8 --train-steps 600 --seeds 0,1

# Regenerate the provisioned Grafana dashboards from grafana/*.py; commit the JSON it writes.
dashboards: $(VENV)/.full-stamp
	$(PY) -m grafana.build

clean:
	rm -rf var artifacts .pytest_cache .mypy_cache .ruff_cache
