"""ScopeHive trainer: dataset package in, verified model bundle out, rolled out to the fleet.

Importing this package never needs TensorRT (imported lazily by the engine builder) and never
imports `device`: the two meet only through the dataset package and the model bundle formats.
"""

__version__ = "0.1.0"
