"""Data layer: the shared Arrow schemas, readers, BIO validation, stage outputs."""
