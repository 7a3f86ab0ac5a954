"""The weekly report's pictures as PNG (matplotlib, no display needed): the conversion per
stage and manager against the target, and the week's losses against the previous weeks."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

PALETTE = ("#4F81BD", "#9BBB59", "#8064A2", "#F79646", "#4BACC6", "#C0504D", "#2C4D75", "#77933C",
           "#5F497A", "#B65708", "#276A7C", "#772C2A")  # fmt: skip


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def conversion_chart(
    title: str,
    stages: Sequence[str],
    managers: Sequence[str],
    rates: dict[str, Sequence[float | None]],
    targets: Sequence[float | None],
    target_label: str,
) -> bytes:
    """Grouped bars (one per manager) per stage, the target as a red mark over each group."""
    fig = Figure(figsize=(max(6.0, 1.6 * len(stages) + 0.25 * len(managers) * len(stages)), 4.2))
    ax = fig.add_subplot()
    n = max(1, len(managers))
    width = 0.8 / n
    for i, manager in enumerate(managers):
        xs = [s + (i - (n - 1) / 2) * width for s in range(len(stages))]
        values = [(v or 0) * 100 for v in rates[manager]]
        ax.bar(xs, values, width=width * 0.95, label=manager, color=PALETTE[i % len(PALETTE)])
    for s, target in enumerate(targets):
        if target is not None:
            ax.hlines(target * 100, s - 0.45, s + 0.45, colors="#C00000", linestyles="--", linewidth=2,
                      label=target_label if s == 0 else None)  # fmt: skip
    ax.set_xticks(range(len(stages)), [label.replace(" → ", "\n→ ") for label in stages], fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", color="#D9D9D9")
    ax.set_axisbelow(True)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(
            fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(4, n + 1), frameon=False
        )
    return _png(fig)


def losses_chart(
    title: str,
    weeks: Sequence[str],
    panels: Sequence[tuple[str, dict[str, Sequence[int]]]],
    ylabel: str,
) -> bytes:
    """One panel per breakdown (stage, reason): lost deals per week stacked by category."""
    fig = Figure(figsize=(5.2 * len(panels), 4.2))
    fig.suptitle(title, fontsize=11)
    for p, (panel_title, series) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), p)
        bottom = [0] * len(weeks)
        for i, (label, values) in enumerate(series.items()):
            ax.bar(range(len(weeks)), values, bottom=bottom, label=label, color=PALETTE[i % len(PALETTE)])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_xticks(range(len(weeks)), weeks, fontsize=8, rotation=30)
        ax.set_title(panel_title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", color="#D9D9D9")
        ax.set_axisbelow(True)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if series:
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    return _png(fig)
