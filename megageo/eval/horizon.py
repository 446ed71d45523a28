"""Useful-skill horizon: how far ahead a forecast keeps an anomaly correlation of at least 0.6.

ACC = 0.6 is the customary limit of useful synoptic skill for Z500 in medium-range verification, so one number per
forecast says how far ahead it is worth reading, where a per-lead table needs a reader to scan twenty rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from megageo.errors import MegageoError

USEFUL_ACC = 0.6
DEFINITION = (f"The last lead of the initial run of leads with ACC >= {USEFUL_ACC:g} (a forecast that falls below "
              f"and later recovers is not credited with the later leads); none when the first lead already falls "
              f"short; at least the last scored lead when no lead falls short.")


def skill_horizon(acc: Sequence[float], lead_hours: Sequence[float], threshold: float = USEFUL_ACC) -> float | None:
    """The last lead of the initial run of leads whose ACC is at least `threshold`, in hours.

    Why the initial run and not the last lead above the threshold: past the horizon ACC hovers near it, and a
    late upward blip of sampling noise (27 samples in the demo) would otherwise extend the horizon over leads
    that had already lost their skill. None when the first lead already falls short; the last scored lead when
    none does (then the true horizon lies at or beyond it, see `describe_horizon`).
    """
    if len(acc) != len(lead_hours) or not lead_hours:
        raise MegageoError(f"need one ACC per lead, got {len(acc)} values for {len(lead_hours)} leads")
    horizon = None
    for value, hours in zip(acc, lead_hours):
        if value < threshold:
            break
        horizon = float(hours)
    return horizon


def describe_horizon(horizon: float | None, lead_hours: Sequence[float]) -> str:
    """`72 h`, `none (ACC < 0.6 at 6 h)` or `≥ 120 h` (skilful at every scored lead: the horizon lies at or beyond
    the last one, so a reader knows to score further)."""
    if horizon is None:
        return f"none (ACC < {USEFUL_ACC:g} at {lead_hours[0]:g} h)"
    return f"≥ {horizon:g} h" if horizon == lead_hours[-1] else f"{horizon:g} h"
