"""Inference: pre-processing, backends (ONNX Runtime, OpenCV DNN, TensorRT), output decoding, the Detector."""
