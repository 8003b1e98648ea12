"""Annotation tags shared by the dashboards (which query them) and grafana.annotations (which
writes them). Kept free of grafana-foundation-sdk so the trainer can mark events without it."""

TAG_APP = "scopehive"
TAG_ROLLOUT = "rollout"
TAG_TRAINING = "training"
TAG_EXPERIMENT = "experiment"  # experiment start/stop, written by the device (device/experiments/grafana_marks.py)
