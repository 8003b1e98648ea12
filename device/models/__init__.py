"""Model bundles on the device: reading, validating and choosing what the detector runs."""
