"""Chaining stages into a pipeline: hashing, skipping finished stages, resuming, submitting."""
