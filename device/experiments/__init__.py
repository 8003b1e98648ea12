"""Experiments: the unit of ScopeHive's record (a sample, a slide, a well, from start to stop).

quality    per-frame focus/exposure scores and the `analysed` status (never a fake zero)
calibration µm-per-pixel profiles per objective/camera and the stage-micrometer helper
store      experiments, profiles and their per-frame/per-object record (SQLite, survives restarts)
recorder   the frame loop's side: tags, object points, buffered record, start/stop marks
summary    statistics of one experiment from the device's own record (no InfluxDB needed)
report     per-frame and per-object CSV and the self-contained HTML report
"""
