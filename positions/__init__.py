"""The position batch: equal-length numpy columns that flow through the whole pipeline."""

from positions.batch import COLUMNS, NOT_VALID, Flag, PositionBatch, empty_batch
from positions.devices import DeviceIndex

__all__ = ["COLUMNS", "NOT_VALID", "DeviceIndex", "Flag", "PositionBatch", "empty_batch"]
