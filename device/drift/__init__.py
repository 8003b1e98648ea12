"""Drift alarms: the device compares what its model sees now with what it saw on its validation frames."""
