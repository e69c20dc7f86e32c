"""Chart geometry for the pages' inline SVG (no chart library, nothing downloaded): bars and
stacked bars as percentages, which the templates draw as ``<rect>`` elements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.web.queries import FUNNEL_STAGES, funnel

__all__ = ["STAGE_COLORS", "bars", "funnel_chart", "stacked"]

STAGE_COLORS = {
    "queued": "#9aa5b1",
    "sent": "#4c8bf5",
    "delivered": "#1e8e3e",
    "failed": "#d93025",
    "opted out": "#f29900",
}
BAR_COLOR = "#3b6fb6"


def bars(counts: Mapping[str, int | float], *, scale: float | None = None) -> list[dict[str, Any]]:
    """One bar per label, widths as a percentage of the largest (or of ``scale``)."""
    top = scale if scale is not None else max(counts.values(), default=0)
    return [
        {
            "label": label,
            "value": value,
            "width": round(100 * value / top, 2) if top else 0,
            "color": STAGE_COLORS.get(label, BAR_COLOR),
        }
        for label, value in counts.items()
    ]


def stacked(rows: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """One stacked bar per row (language or channel) with a segment per funnel stage."""
    folded = {label: funnel(dict(statuses)) for label, statuses in rows.items()}
    top = max((sum(stages.values()) for stages in folded.values()), default=0)
    out = []
    for label, stages in sorted(folded.items()):
        x = 0.0
        segments = []
        for stage in FUNNEL_STAGES:
            value = stages[stage]
            width = round(100 * value / top, 2) if top else 0
            if value:
                segments.append(
                    {"stage": stage, "value": value, "x": x, "width": width, "color": STAGE_COLORS[stage]}
                )
            x += width
        out.append({"label": label, "total": sum(stages.values()), "segments": segments})
    return out


def funnel_chart(status: dict[str, Any]) -> dict[str, Any]:
    """Everything the broadcast page draws from a ``broadcast status`` answer."""
    opted_out = sum(1 for s in status.get("skipped", []) if s.get("reason") == "opted out")
    stages = funnel(status.get("by_status", {}), opted_out)
    pending = stages["queued"]
    return {
        "stages": bars(stages, scale=max(status.get("messages", 0) + opted_out, 1)),
        "by_language": stacked(status.get("funnel", {})),
        "by_channel": stacked(status.get("channel_funnel", {})),
        "messages": status.get("messages", 0),
        "final": pending == 0 and status.get("status") not in ("planning",),
        "status": status.get("status"),
    }
