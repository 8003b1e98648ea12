"""The hive: several models per microscope, and inference on any GPU server in the fleet (KServe v2)."""
