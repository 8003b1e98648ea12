"""Objects over time: tracks, unique counts, motility, crossing counts and concentration."""
