"""The engine that composes geofence and trajectory rules over position batches."""
