"""Data generation: Ray Data stages (augmentation, translation, filters, oversampling)."""
