"""Datasets on the device side: the package the trainer reads, and (later) import/export formats."""
