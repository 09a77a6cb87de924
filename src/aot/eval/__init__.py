"""Evaluation: benchmarks from the world, metrics, real-file adapters."""
