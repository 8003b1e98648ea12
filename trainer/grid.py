"""The detector's output grid, in a module without TensorFlow so scoring tools need not load it."""

STRIDE = 4  # input pixels per heatmap cell: small dense objects keep separate peaks at this pitch
