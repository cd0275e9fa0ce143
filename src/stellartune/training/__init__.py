"""Training: batching, optimizer and schedule, checkpoints, the loop, and the fit recipe."""
