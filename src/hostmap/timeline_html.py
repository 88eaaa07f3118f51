"""Draw a `Timeline` as one self-contained HTML page with plotly (the optional extra `hostmap[timeline]`).

plotly.js is inlined, so the page opens without a network. One lane per host, a bar per migration on its source's
lane (planned bars beside actual ones), detour legs joined by a dotted line, the lower bound and estimate marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hostmap.errors import MissingExtra
from hostmap.timeline import Bar, Timeline

#: Colour per outcome; planned bars are grey-blue.
COLOURS = {"planned": "#8fa8c8", "migrated": "#2e9d4f", "skipped": "#b0b0b0", "failed": "#d62728",
           "timed_out": "#e8590c", "declined": "#e0b400", "not_started": "#e0b400", "stranded": "#9c27b0"}
#: Pixels per host lane.
LANE_PX = 26


def require_plotly() -> None:
    """Raise MissingExtra unless plotly can be imported."""
    try:
        import plotly.graph_objects  # noqa: F401
    except ImportError:
        raise MissingExtra("--timeline", "timeline", "plotly") from None


def _mb(size: float | None) -> str:
    return "?" if size is None else f"{size / 2**20:,.0f} MiB"


def _hover(bar: Bar) -> str:
    rate = "?" if bar.rate_gbps is None else f"{bar.rate_gbps:.2f} Gbit/s"
    link = f"<br>linked leg: step {bar.linked_step}" if bar.linked_step is not None else ""
    reason = f"<br>reason: {bar.reason}" if bar.reason else ""
    return (f"<b>{bar.server}</b> ({bar.kind}, step {bar.step})<br>flavor: {bar.flavor or '?'}<br>"
            f"{bar.source} → {bar.target}<br>{bar.start_s:.1f} s → {bar.end_s:.1f} s "
            f"({bar.end_s - bar.start_s:.1f} s)<br>bytes: {_mb(bar.bytes)}, rate: {rate}<br>"
            f"outcome: {bar.outcome}{reason}{link}")


def _bars(go: Any, bars: Sequence[Bar], kind: str, outcome: str) -> Any:
    return go.Bar(
        orientation="h", name=f"{kind}" if kind == "planned" else outcome.replace("_", " "),
        y=[b.lane for b in bars], base=[b.start_s for b in bars], x=[max(b.end_s - b.start_s, 0.01) for b in bars],
        offsetgroup=kind, marker={"color": COLOURS.get(outcome, "#555555"), "line": {"width": 0.5, "color": "#333"}},
        hovertext=[_hover(b) for b in bars], hoverinfo="text", legendgroup=kind,
        customdata=[b.step for b in bars],
    )


def figure(timeline: Timeline) -> Any:
    """The plotly figure of `timeline`."""
    require_plotly()
    import plotly.graph_objects as go

    fig = go.Figure()
    groups: dict[tuple[str, str], list[Bar]] = {}
    for bar in timeline.bars:
        groups.setdefault((bar.kind, bar.outcome), []).append(bar)
    for (kind, outcome), bars in sorted(groups.items(), key=lambda kv: (kv[0][0] != "planned", kv[0][1])):
        fig.add_trace(_bars(go, bars, kind, outcome))
    # Detour legs: a dotted line from the end of a first leg (its source's lane) to the start of the next one (the
    # pivot's lane), one line per kind, drawn once per pair.
    by_key = {(b.kind, b.step): b for b in timeline.bars}
    xs: list[float | None] = []
    ys: list[str | None] = []
    for bar in timeline.bars:
        nxt = by_key.get((bar.kind, bar.linked_step)) if bar.linked_step is not None else None
        if nxt is not None and nxt.step > bar.step:
            xs += [bar.end_s, nxt.start_s, None]
            ys += [bar.lane, nxt.lane, None]
    if xs:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="detour legs", hoverinfo="skip",
                                 line={"dash": "dot", "color": "#555", "width": 1}))
    marks = [("lower bound", timeline.lower_bound_s, "#444", "top left"),
             ("estimate", timeline.estimated_s, "#1f5fbf", "top right")]
    if timeline.makespan_s is not None:
        marks.append(("actual makespan", timeline.makespan_s, "#2e9d4f", "bottom right"))
    for label, x, colour, where in marks:
        if x > 0:
            fig.add_vline(x=x, line={"dash": "dash", "color": colour, "width": 1}, annotation_position=where,
                          annotation={"text": f"{label} {x:.1f} s", "font": {"color": colour}})
    lanes = list(timeline.lanes)
    fig.update_layout(
        title=timeline.title, barmode="group", bargap=0.25, bargroupgap=0.05, template="plotly_white",
        height=max(420, LANE_PX * len(lanes) + 180), hovermode="closest",
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        xaxis={"title": "seconds from the start", "rangemode": "tozero"},
        yaxis={"title": "host (source of each bar)", "categoryorder": "array", "categoryarray": lanes[::-1],
               "type": "category", "range": [-0.5, len(lanes) - 0.5]},
        margin={"l": 140, "r": 30, "t": 90, "b": 50},
    )
    return fig


def write_html(timeline: Timeline, path: Path | str) -> None:
    """Write the page: plotly.js inline, no request to any network when it is opened."""
    fig = figure(timeline)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True,
                   config={"displaylogo": False, "responsive": True}, div_id="hostmap-timeline")
