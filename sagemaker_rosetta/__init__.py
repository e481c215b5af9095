"""Rosetta CLI, Docker engine and image helpers."""
