"""Frame sources: everything that can hand the device a picture of the sample."""
