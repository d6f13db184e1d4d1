"""Vectorized geofence engine: fences, fence sets, batch membership and transitions."""
