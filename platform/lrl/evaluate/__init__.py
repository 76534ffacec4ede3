"""seqeval span metrics, predictions, reports and model cards."""
