"""Batches and batched forward passes, shared by training and inference (so neither owns them):
length-grouped training batches, length-sorted inference batches, and logits in input order."""
