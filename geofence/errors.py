"""The one error the geofence package raises on bad fence input."""

from __future__ import annotations


class FenceError(ValueError):
    """A fence definition is unusable; the message names the file, feature or line, and field."""
