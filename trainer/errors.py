"""Errors the trainer reports to the user as one clear line (defined apart from TensorFlow code,
so the CLI can catch them without importing TensorFlow)."""


class ExportError(RuntimeError):
    """The model could not be exported or the ONNX model disagrees with Keras."""


class OutputDirError(ValueError):
    """--out (or a bundle folder) cannot be used; the message says how to proceed."""


class WeightsError(ValueError):
    """A --weights file that is missing or does not fit the backbone; the message says what fits."""


class PretrainError(ValueError):
    """No usable frames for pre-training, or options that cannot work; the message says what to give."""
