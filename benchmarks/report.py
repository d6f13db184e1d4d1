"""Turns pytest-benchmark results into throughputs, baselines and ratios.

A benchmark declares what it measured through `benchmark.extra_info`:
- `items`: how many items (frames, positions, points) one round processes;
- `baseline` (optional): the name of the benchmark in the same suite it is compared with.
- `cpu_s` (optional): CPU seconds the measured process spent on those items. It gives
  `cpu_us_per_item` and `per_cpu_s` (items per CPU-second: capacity, whatever rate was offered);
  with a baseline that has it too, `baseline_cpu_us_per_item` and `cpu_ratio` (per_cpu_s over the
  baseline's: below 1 when an item costs more CPU than in the baseline);
- `notes` (optional): lines printed under the result's line.
- `main` (optional, true on one result): the suite's main figure, repeated as `main` at the top
  of the summary with its baseline and ratio.
Throughput is items / median round time. Each result with a baseline gets `ratio`.
"""

from __future__ import annotations

from typing import Any


def summarize(suite: str, raw: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    raw_notes: dict[str, list[str]] = {}
    main = ""
    for bench in raw.get("benchmarks", []):
        info = bench.get("extra_info", {})
        items = info.get("items")
        name = bench["name"].removeprefix("test_")
        raw_notes[name] = [str(n) for n in info.get("notes", [])]
        if info.get("main"):
            main = name
        median = bench["stats"]["median"]
        entry: dict[str, Any] = {"median_s": median}
        if items:
            entry["items"] = items
            entry["per_s"] = items / median if median > 0 else float("inf")
            if info.get("cpu_s"):
                entry["cpu_us_per_item"] = info["cpu_s"] * 1e6 / items
                entry["per_cpu_s"] = items / info["cpu_s"]
        for key, value in info.items():
            if key not in ("items", "baseline", "notes", "main"):
                entry[key] = value
        if info.get("baseline"):
            entry["baseline"] = str(info["baseline"]).removeprefix("test_")
        results[name] = entry
    lines = []
    for name, entry in results.items():
        base = results.get(entry.get("baseline", ""))
        if base and "per_s" in entry and "per_s" in base:
            entry["baseline_per_s"] = base["per_s"]
            entry["ratio"] = entry["per_s"] / base["per_s"]
        text = f"{suite}.{name}: "
        text += f"{entry['per_s']:,.0f}/s" if "per_s" in entry else f"{entry['median_s']:.6f} s"
        if "ratio" in entry:
            text += f"  ({entry['ratio']:.1f}x {entry['baseline']})"
        if "cpu_us_per_item" in entry:
            text += f"; CPU {entry['cpu_us_per_item']:,.1f} µs/item"
        if base and "per_cpu_s" in entry and "per_cpu_s" in base:
            entry["baseline_cpu_us_per_item"] = base["cpu_us_per_item"]
            entry["cpu_ratio"] = entry["per_cpu_s"] / base["per_cpu_s"]
            text += f" vs {base['cpu_us_per_item']:,.1f} µs/item {entry['baseline']}"
            text += f" ({entry['cpu_ratio']:.2f}x per CPU-second)"
        lines.append(text)
        lines += [f"  {note}" for note in raw_notes.get(name, [])]
    summary: dict[str, Any] = {"suite": suite, "results": results, "lines": lines}
    if main:
        keys = ("per_s", "baseline", "baseline_per_s", "ratio")
        summary["main"] = {"result": main} | {
            k: results[main][k] for k in keys if k in results[main]
        }
        if "ratio" in results[main]:
            lines.insert(
                0, f"{suite} main: {results[main]['ratio']:.1f}x {results[main]['baseline']}"
            )
    return summary
