"""Tokenizers (train or extend), model building from presets or checkpoints, freezing."""
