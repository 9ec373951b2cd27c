"""Metrics and pictures of results."""
