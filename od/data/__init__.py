"""Datasets, manifests and caches."""
