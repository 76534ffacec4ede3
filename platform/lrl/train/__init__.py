"""Training loops on Ray Train: multilingual MLM pretraining and token-classification fine-tuning."""
