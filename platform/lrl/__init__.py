"""lrl: language models for low-resource languages, on Ray."""

__version__ = "0.1.0"
