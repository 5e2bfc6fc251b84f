"""The admin index: the last 14 days of runs by status as a server-rendered SVG chart, the
integrations needing attention (last run failed, partial, held or cancelled), the stuck runs and the runs queued behind
schedule; every one of these is defined once, in integrations/conditions.py (as /metrics counts them)."""

from datetime import datetime, time, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from .. import conditions
from ..conf import conf
from ..models import SyncRun

Status = SyncRun.Status
DAYS = 14
# bottom to top in a bar: the settled outcomes first, then what is still moving
CHART_ORDER = (
    Status.SUCCEEDED,
    Status.PARTIAL,
    Status.NEEDS_REVIEW,
    Status.FAILED,
    Status.CANCELLED,
    Status.PROCESSING,
    Status.QUEUED,
    Status.RECEIVING,
)

WIDTH, HEIGHT = 760, 250
LEFT, RIGHT, TOP, BOTTOM = 36, 10, 14, 34


def runs_by_day(now=None) -> tuple[list, dict]:
    now = now or timezone.now()
    today = timezone.localdate(now)
    days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    start = timezone.make_aware(datetime.combine(days[0], time.min))
    counts: dict = {day: {} for day in days}
    rows = (
        SyncRun.objects.filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        if row["day"] in counts:
            counts[row["day"]][row["status"]] = row["n"]
    return days, counts


def _nice_ceiling(value: int) -> int:
    for step in (4, 8, 12, 20, 40, 60, 100, 200, 400, 600, 1000):
        if value <= step:
            return step
    magnitude = 10 ** (len(str(value)) - 1)
    return ((value + magnitude - 1) // magnitude) * magnitude


def chart(now=None) -> dict:
    """Everything the SVG template draws, computed here: bars, grid lines, labels, legend."""
    days, counts = runs_by_day(now)
    totals = [sum(counts[d].values()) for d in days]
    top = _nice_ceiling(max(totals) or 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / DAYS
    bar_w = slot * 0.66
    changelist = reverse("admin:integrations_syncrun_changelist")
    bars = []
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar_w) / 2
        y = TOP + plot_h
        segments = []
        for status in CHART_ORDER:
            n = counts[day].get(status, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            segments.append(
                {
                    "x": round(x, 1),
                    "y": round(y, 1),
                    "w": round(bar_w, 1),
                    "h": round(max(h, 0.5), 1),
                    "status": status,
                    "n": n,
                    "url": f"{changelist}?status__exact={status}&created_at__day={day.day}"
                    f"&created_at__month={day.month}&created_at__year={day.year}",
                }
            )
        bars.append(
            {
                "day": day,
                "label": day.strftime("%d %b"),
                "total": totals[i],
                "segments": segments,
                "label_x": round(LEFT + i * slot + slot / 2, 1),
                "total_y": round(y - 4, 1),
            }
        )
    grid = []
    for k in range(5):
        value = top * k // 4
        grid.append({"y": round(TOP + plot_h - plot_h * k / 4, 1), "value": value})
    present = {s for d in days for s in counts[d]}
    legend = [
        {"status": s, "label": s.replace("_", " ")}
        for s in CHART_ORDER
        if s in present or s in (Status.SUCCEEDED, Status.FAILED)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "bottom": TOP + plot_h,
        "label_y": TOP + plot_h + 16,
        "bars": bars,
        "grid": grid,
        "legend": legend,
        "total": sum(totals),
        "first": days[0],
        "last": days[-1],
    }


def attention_integrations():
    failing = list(conditions.attention_integrations().select_related("customer").order_by("-last_finished")[:50])
    for integration in failing:
        integration.last_label = integration.last_status.replace("_", " ")
    return failing


def stuck_runs(now=None):
    return list(conditions.stuck_runs(now).select_related("integration__customer").order_by("started_at")[:50])


def dashboard_context(request) -> dict:
    if not request.user.has_perm("integrations.view_syncrun"):
        return {}
    now = timezone.now()
    return {
        "sync_dashboard": True,
        "sync_chart": chart(now),
        "sync_attention": attention_integrations(),
        "sync_failing_count": conditions.failing_integrations().count(),  # as /metrics counts them
        "sync_stuck": stuck_runs(now),
        "sync_stuck_after": conf.STUCK_AFTER,
        "sync_held": conditions.held_runs().count(),
        "sync_behind": conditions.behind_runs(now).count(),
        "sync_behind_after": conf.BEHIND_AFTER,
        "sync_runs_url": reverse("admin:integrations_syncrun_changelist"),
    }
