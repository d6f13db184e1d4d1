"""API clients in a loop, as map tabs and reports do: `python -m benchmarks.api_clients URL KEY
TERMINAL FROM TO SECONDS CLIENTS`. Each client fetches the terminal's whole track and the fence
collection (in GCJ-02, as a Chinese map asks) in turn until SECONDS pass, then the process prints
one JSON line: requests, bytes and failures. A process of its own, so its CPU is not the load
generator's."""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx


def main() -> None:
    url, key, terminal, start, end, seconds, clients = sys.argv[1:8]
    stop_at = time.monotonic() + float(seconds)
    totals = {"requests": 0, "bytes": 0, "failures": 0}
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as http:
            paths = [
                f"/api/v1/devices/{terminal}/track?from={start}&to={end}",
                "/api/v1/fences?crs=gcj02",
            ]
            i = 0
            while time.monotonic() < stop_at:
                answer = http.get(paths[i % 2])
                i += 1
                with lock:
                    totals["requests"] += 1
                    totals["bytes"] += len(answer.content)
                    totals["failures"] += answer.status_code != 200

    threads = [threading.Thread(target=client) for _ in range(int(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(totals), flush=True)


if __name__ == "__main__":
    main()
