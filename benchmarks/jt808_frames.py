"""A realistic, reproducible mix of 0x0200 frames for the decode and ingest benchmarks."""

from __future__ import annotations

import random

from ingest.jt808 import Edition, LocationReport, Status, encode_frame

# Items a typical car tracker appends: mileage, signal, satellites; some add IO and analog.
_BASE_ITEMS = ((0x30, 1), (0x31, 1))


def location_frames(count: int, *, terminals: int = 5000, seed: int = 7) -> list[bytes]:
    """`count` frames from `terminals` devices in eastern China, 90% 2013 and 10% 2019."""
    rng = random.Random(seed)
    ids = [f"0139{rng.randrange(10**8):08d}" for _ in range(terminals)]
    editions = [Edition.V2019 if rng.random() < 0.1 else Edition.V2013 for _ in range(terminals)]
    t0_ms = 1_735_689_600_000  # 2025-01-01T00:00:00Z
    frames: list[bytes] = []
    for i in range(count):
        d = rng.randrange(terminals)
        extras: list[tuple[int, bytes]] = [(0x01, rng.randrange(10**7).to_bytes(4, "big"))]
        extras += [(item, rng.randrange(32).to_bytes(n, "big")) for item, n in _BASE_ITEMS]
        if rng.random() < 0.3:
            extras.append((0x25, rng.randrange(1 << 16).to_bytes(4, "big")))
            extras.append((0x2A, b"\x00\x00"))
        if rng.random() < 0.1:
            extras.append((0x2B, rng.randrange(1 << 32).to_bytes(4, "big")))
        moving = rng.random() < 0.6
        status = Status.POSITIONED | (Status.ACC_ON if moving else 0) | Status.GPS
        report = LocationReport.at(
            lon=rng.uniform(113.0, 122.0),
            lat=rng.uniform(22.0, 32.0),
            time_ms=t0_ms + i * 10_000,
            speed_kmh=rng.uniform(5, 110) if moving else 0.0,
            course=rng.randrange(360),
            altitude_m=rng.randrange(200),
            alarm=256 if rng.random() < 0.001 else 0,
            status=int(status),
            extras=tuple(extras),
        )
        frames.append(encode_frame(report, terminal=ids[d], serial=i & 0xFFFF, edition=editions[d]))
    return frames
