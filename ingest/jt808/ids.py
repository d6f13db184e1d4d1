"""Identifiers of JT/T 808: message ids, editions, roles, error codes, parameter ids, bit names."""

from __future__ import annotations

import enum


class MessageId(enum.IntEnum):
    """Message ids we decode and encode (terminal → platform 0x0xxx, platform → terminal 0x8xxx)."""

    TERMINAL_GENERAL_RESPONSE = 0x0001
    HEARTBEAT = 0x0002
    DEREGISTER = 0x0003
    REGISTER = 0x0100
    AUTHENTICATE = 0x0102
    PARAMETERS_REPLY = 0x0104
    LOCATION_REPORT = 0x0200
    LOCATION_QUERY_REPLY = 0x0201
    VEHICLE_CONTROL_REPLY = 0x0500
    BATCH_LOCATION_REPORT = 0x0704
    MULTIMEDIA_EVENT = 0x0800
    MULTIMEDIA_UPLOAD = 0x0801
    PASS_THROUGH = 0x0900
    PLATFORM_GENERAL_RESPONSE = 0x8001
    RESEND_REQUEST = 0x8003
    REGISTER_RESPONSE = 0x8100
    SET_PARAMETERS = 0x8103
    QUERY_PARAMETERS = 0x8104
    TERMINAL_CONTROL = 0x8105
    LOCATION_QUERY = 0x8201
    TEMPORARY_TRACKING = 0x8202
    TEXT_MESSAGE = 0x8300
    VEHICLE_CONTROL = 0x8500


class Edition(enum.IntEnum):
    """Protocol edition. 2011 and 2013 share the header; only some body widths differ."""

    V2011 = 2011
    V2013 = 2013
    V2019 = 2019


class Role(enum.Enum):
    """Which side of the link a connection object plays."""

    PLATFORM = "platform"
    TERMINAL = "terminal"


class ErrorCode(enum.StrEnum):
    """Why a frame was rejected (contracts section 2)."""

    BAD_CHECKSUM = "bad_checksum"
    BAD_ESCAPE = "bad_escape"
    TRUNCATED = "truncated"
    BAD_LENGTH = "bad_length"
    UNKNOWN_MESSAGE = "unknown_message"
    BAD_BODY = "bad_body"


class Result(enum.IntEnum):
    """Result byte of the general responses 0x0001 / 0x8001."""

    OK = 0
    FAILED = 1
    BAD_MESSAGE = 2
    UNSUPPORTED = 3
    ALARM_CONFIRMED = 4  # 0x8001 only


class RegisterResult(enum.IntEnum):
    """Result byte of 0x8100."""

    OK = 0
    VEHICLE_ALREADY_REGISTERED = 1
    VEHICLE_UNKNOWN = 2
    TERMINAL_ALREADY_REGISTERED = 3
    TERMINAL_UNKNOWN = 4


class ParamId(enum.IntEnum):
    """Terminal parameters (0x8103 / 0x0104) a car-finance platform uses."""

    HEARTBEAT_INTERVAL_S = 0x0001
    TCP_REPLY_TIMEOUT_S = 0x0002
    TCP_RETRIES = 0x0003
    SERVER_ADDRESS = 0x0013
    SERVER_TCP_PORT = 0x0018
    REPORT_STRATEGY = 0x0020
    REPORT_SCHEME = 0x0021
    SLEEP_INTERVAL_S = 0x0027
    EMERGENCY_INTERVAL_S = 0x0028
    DEFAULT_INTERVAL_S = 0x0029
    DEFAULT_DISTANCE_M = 0x002C
    SLEEP_DISTANCE_M = 0x002E
    EMERGENCY_DISTANCE_M = 0x002F
    SPEED_LIMIT_KMH = 0x0055
    OVERSPEED_DURATION_S = 0x0056
    ODOMETER_DKM = 0x0080


# DWORD-valued parameters: encoded as 4-byte big-endian integers by `SetParameters.of`.
DWORD_PARAMS = frozenset(
    {
        ParamId.HEARTBEAT_INTERVAL_S,
        ParamId.TCP_REPLY_TIMEOUT_S,
        ParamId.TCP_RETRIES,
        ParamId.SERVER_TCP_PORT,
        ParamId.REPORT_STRATEGY,
        ParamId.REPORT_SCHEME,
        ParamId.SLEEP_INTERVAL_S,
        ParamId.EMERGENCY_INTERVAL_S,
        ParamId.DEFAULT_INTERVAL_S,
        ParamId.DEFAULT_DISTANCE_M,
        ParamId.SLEEP_DISTANCE_M,
        ParamId.EMERGENCY_DISTANCE_M,
        ParamId.SPEED_LIMIT_KMH,
        ParamId.OVERSPEED_DURATION_S,
        ParamId.ODOMETER_DKM,
    }
)


class Alarm(enum.IntFlag):
    """Alarm word bits of 0x0200 (2013 names; 2019 adds 15-17)."""

    EMERGENCY = 1 << 0
    OVERSPEED = 1 << 1
    FATIGUE = 1 << 2
    DANGER = 1 << 3
    GNSS_FAULT = 1 << 4
    GNSS_ANTENNA_CUT = 1 << 5
    GNSS_ANTENNA_SHORT = 1 << 6
    POWER_UNDERVOLTAGE = 1 << 7
    POWER_CUT = 1 << 8
    DISPLAY_FAULT = 1 << 9
    TTS_FAULT = 1 << 10
    CAMERA_FAULT = 1 << 11
    IC_CARD_FAULT = 1 << 12
    OVERSPEED_WARNING = 1 << 13
    FATIGUE_WARNING = 1 << 14
    ILLEGAL_DRIVING = 1 << 15
    TYRE_PRESSURE = 1 << 16
    BLIND_ZONE = 1 << 17
    DAILY_DRIVING_EXCEEDED = 1 << 18
    PARKED_TOO_LONG = 1 << 19
    AREA_IN_OUT = 1 << 20
    ROUTE_IN_OUT = 1 << 21
    SECTION_TIME = 1 << 22
    ROUTE_DEVIATION = 1 << 23
    VSS_FAULT = 1 << 24
    FUEL_ABNORMAL = 1 << 25
    STOLEN = 1 << 26
    ILLEGAL_IGNITION = 1 << 27
    ILLEGAL_MOVEMENT = 1 << 28
    COLLISION = 1 << 29
    ROLLOVER = 1 << 30
    ILLEGAL_DOOR_OPEN = 1 << 31


class Status(enum.IntFlag):
    """Status word bits of 0x0200 (load bits 8-9 are a two-bit field, named per bit here)."""

    ACC_ON = 1 << 0
    POSITIONED = 1 << 1
    SOUTH = 1 << 2
    WEST = 1 << 3
    OUT_OF_SERVICE = 1 << 4
    ENCRYPTED = 1 << 5
    LOAD_BIT_0 = 1 << 8
    LOAD_BIT_1 = 1 << 9
    FUEL_CUT = 1 << 10
    CIRCUIT_CUT = 1 << 11
    DOORS_LOCKED = 1 << 12
    DOOR_1_OPEN = 1 << 13
    DOOR_2_OPEN = 1 << 14
    DOOR_3_OPEN = 1 << 15
    DOOR_4_OPEN = 1 << 16
    DOOR_5_OPEN = 1 << 17
    GPS = 1 << 18
    BEIDOU = 1 << 19
    GLONASS = 1 << 20
    GALILEO = 1 << 21
    MOVING = 1 << 22


def flag_names(word: int, flags: type[enum.IntFlag]) -> list[str]:
    """Names of the set bits of `word` that `flags` knows, lowest bit first, in lower case."""
    return [str(member.name).lower() for member in flags if member.value & word]
