"""Trajectory filters and anomaly rules over position batches."""
