"""Ray Tune searches of fine-tuning hyperparameters, per language."""
