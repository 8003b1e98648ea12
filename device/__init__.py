"""ScopeHive device runtime: capture frames, detect objects, measure them, serve the panel.

Importing this package is cheap on purpose: no TensorFlow, no TensorRT, no OpenCV at import time.
"""

__version__ = "0.1.0"
