"""The repository stands on its own: no code, test, script or document points at a folder
beside the checkout (a user's clone has nothing there)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "__pycache__", "node_modules", "build", "dist"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".ini", ".txt", ".json", ".jsonl", ".sh", ""}
# Built by concatenation so this file does not match itself.
OUTSIDE = ("../" + "shared", "shared" + "/contracts", "shared" + "/docs/", "shared" + "/fixtures")


def repository_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & SKIP_DIRS or any(p.endswith(".egg-info") for p in parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            found.append(path)
    return found


def test_nothing_points_outside_the_repository() -> None:
    files = repository_files()
    assert any(p.name == "README.md" for p in files)
    offenders = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {o}" for o in OUTSIDE if o in text]
    assert offenders == []
