"""Training: examples and batches, tuning strategies, the loop with early stopping."""
