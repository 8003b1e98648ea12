"""Per-frame statistics, the durable outbox and the InfluxDB sender (schema: docs/metrics.md)."""
