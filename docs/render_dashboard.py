"""Render the panels of docs/grafana/integrations-dashboard.json from real /metrics scrapes, without
Grafana (not available here): the same queries, evaluated over the scraped samples.

    LOAD_METRICS_OUT=/tmp/scrapes.jsonl LOAD_SECONDS=90 .venv/bin/python bench/load.py
    .venv/bin/python docs/render_dashboard.py /tmp/scrapes.jsonl docs/screenshots/metrics-dashboard.png

Only the PromQL shapes the dashboard uses are understood (rate, sum by, max, histogram_quantile,
one ratio); an unknown shape stops the script, so the picture never shows something else than the
dashboard would.
"""

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

DASHBOARD = Path(__file__).resolve().parent / "grafana" / "integrations-dashboard.json"
WINDOW = 30.0  # seconds: the $__rate_interval of the picture
R = r"\[\$__rate_interval\]"


def load(path):
    scrapes = []
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        samples = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(row["text"]) for s in f.samples]
        scrapes.append((row["t"], samples))
    return scrapes


def grouped(samples, name, by):
    out = defaultdict(float)
    for n, labels, value in samples:
        if n == name:
            out[tuple(labels.get(k, "") for k in by)] += value
    return out


def window_pairs(scrapes):
    """(t, earlier samples, later samples) for every scrape with one WINDOW seconds before it."""
    for i, (t, now) in enumerate(scrapes):
        j = i
        while j > 0 and t - scrapes[j - 1][0] <= WINDOW:
            j -= 1
        if j < i:
            yield t, scrapes[j][0], scrapes[j][1], now


def rate(scrapes, name, by):
    series = defaultdict(list)
    for t, t0, before, after in window_pairs(scrapes):
        b, a = grouped(before, name, by), grouped(after, name, by)
        for key in set(a) | set(b):
            series[key].append((t, max(0.0, a.get(key, 0) - b.get(key, 0)) / (t - t0)))
    return series


def quantile(q, buckets):
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q."""
    ordered = sorted(((float(le), n) for le, n in buckets.items()), key=lambda x: x[0])
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    prev_le, prev_n = 0.0, 0.0
    for le, n in ordered:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / (n - prev_n) if n > prev_n else 0)
        prev_le, prev_n = le, n
    return prev_le


def evaluate(expr, scrapes, legend):
    """{legend: [(t, value)]} for one target's expression."""
    if m := re.fullmatch(rf"sum by \((\w+)\) \(rate\((\w+){R}\)\)(?: \* (\d+))?", expr):
        by, name, factor = m.group(1), m.group(2), float(m.group(3) or 1)
        return {
            legend.replace("{{" + by + "}}", key[0]): [(t, v * factor) for t, v in pts]
            for key, pts in rate(scrapes, name, (by,)).items()
        }
    if m := re.fullmatch(rf"histogram_quantile\(([\d.]+), sum by \(le\) \(rate\((\w+)_bucket{R}\)\)\)", expr):
        q, name = float(m.group(1)), m.group(2) + "_bucket"
        points = []
        for t, _t0, before, after in window_pairs(scrapes):
            b, a = grouped(before, name, ("le",)), grouped(after, name, ("le",))
            value = quantile(q, {k[0]: a.get(k, 0) - b.get(k, 0) for k in a})
            if value is not None:
                points.append((t, value))
        return {legend: points}
    if m := re.fullmatch(r"max\((\w+)\)", expr):
        return {legend: [(t, max([v for n, _, v in s if n == m.group(1)] or [0])) for t, s in scrapes]}
    if m := re.fullmatch(r"sum by \((\w+)\) \(max by \([\w, ]+\) \((\w+)\)\)", expr):
        by, name = m.group(1), m.group(2)
        keys = {labels[by] for _, s in scrapes for n, labels, _ in s if n == name}
        return {
            legend.replace("{{" + by + "}}", k): [(t, grouped(s, name, (by,)).get((k,), 0)) for t, s in scrapes]
            for k in sorted(keys)
        }
    if m := re.fullmatch(rf"sum\(rate\((\w+){R}\)\)", expr):
        return {legend: [(t, v) for t, v in rate(scrapes, m.group(1), ()).get((), [])]}
    if m := re.fullmatch(rf"sum\(rate\((\w+){R}\)\) / sum\(rate\((\w+){R}\)\) / (\d+)", expr):
        top, bottom = dict(rate(scrapes, m.group(1), ()).get((), [])), dict(rate(scrapes, m.group(2), ()).get((), []))
        return {legend: [(t, top[t] / bottom[t] / float(m.group(3))) for t in sorted(top) if bottom.get(t)]}
    raise SystemExit(f"render_dashboard.py does not understand: {expr}")


def main(source, out):
    scrapes = load(source)
    start = scrapes[0][0]
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(18, 4.2 * rows))
    for ax, panel in zip(axes.flat, panels, strict=False):
        ax.set_title(panel["title"], fontsize=11, loc="left")
        if panel["type"] == "table":
            target = panel["targets"][0]
            m = re.fullmatch(r"max by \(integration, status\) \((\w+)\)", target["expr"])
            if not m:
                raise SystemExit(f"render_dashboard.py does not understand: {target['expr']}")
            peak = max(scrapes, key=lambda s: sum(v for n, _, v in s[1] if n == m.group(1)))
            rows_ = sorted(
                (lab["integration"], lab["status"], int(v)) for n, lab, v in peak[1] if n == m.group(1) and v
            )
            ax.axis("off")
            ax.text(
                0,
                1,
                f"at t = {peak[0] - start:.0f} s\n" + "\n".join(f"{i:<22} {s:<12} {v}" for i, s, v in rows_[:14]),
                va="top",
                family="monospace",
                fontsize=9,
                transform=ax.transAxes,
            )
            continue
        drawn = False
        for target in panel["targets"]:
            for label, points in sorted(evaluate(target["expr"], scrapes, target["legendFormat"]).items()):
                if points and any(v for _, v in points):
                    ax.plot([t - start for t, _ in points], [v for _, v in points], label=label, linewidth=1.4)
                    drawn = True
        unit = panel["fieldConfig"]["defaults"].get("unit")
        ax.set_xlabel("seconds into the load test", fontsize=8)
        if unit == "s":
            ax.set_ylabel("seconds", fontsize=8)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, loc="upper left")
        else:
            ax.text(0.5, 0.5, "all zero in this window", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        f"{dashboard['title']}: {len(scrapes)} scrapes of /metrics during `make load` "
        f"(docs/grafana/integrations-dashboard.json, rate window {WINDOW:.0f} s)",
        fontsize=13,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out, dpi=80)
    print(f"written {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
