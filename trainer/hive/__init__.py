"""Hive inference servers: serve model bundles on Triton (KServe v2) for any device in the fleet.

`python -m trainer serve` hosts bundles through PyTriton on this machine; `--repository` writes
the same models as a Triton model repository for the stock tritonserver (Jetson, GPU servers).
"""
