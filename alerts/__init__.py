"""Alerts: one per incident, with a lifecycle, stored and fanned out."""
