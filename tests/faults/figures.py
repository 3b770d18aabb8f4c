"""The figures issue 7 asks for, gathered while the trust suite runs and printed at the end.

Each test adds to these counters as it goes, so a failing test still shows how far it got.
"""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()
FAILED_SCENARIOS: list[str] = []
NOTES: list[str] = []


def kill_made(upload_to: str | None = None) -> None:
    """One kill -9 more; `upload_to` counts it for that service's uploads too."""
    FIGURES["kills made"] += 1
    if upload_to:
        FIGURES[f"kills made, {upload_to} uploads"] += 1


def kill_survived(upload_to: str | None = None) -> None:
    FIGURES["kills survived"] += 1
    if upload_to:
        FIGURES[f"kills survived, {upload_to} uploads"] += 1


def scenario(name: str, passed: bool) -> None:
    FIGURES["fault scenarios tried"] += 1
    if passed:
        FIGURES["fault scenarios passed"] += 1
    else:
        FAILED_SCENARIOS.append(name)


def summary_lines() -> list[str]:
    order = ["kills survived", "kills made", "fault scenarios passed", "fault scenarios tried",
             "bad inputs tried", "secret values checked", "secrets found"]
    lines = [f"{name}: {FIGURES[name]}" for name in order if name in FIGURES]
    lines += [f"{name}: {FIGURES[name]}" for name in sorted(FIGURES)
              if name.startswith(("kills survived, ", "kills made, "))]
    if FAILED_SCENARIOS:
        lines.append("failed scenarios: " + ", ".join(FAILED_SCENARIOS))
    return lines + NOTES
