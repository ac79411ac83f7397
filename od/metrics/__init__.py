"""Metrics: FAD bridge, CLAP metrics, and conditioning A/B accuracy."""
