"""Metrics and the tables that show them."""
