"""Five-field cron expressions (minute hour day-of-month month day-of-week) and their next
firing time in a time zone.

Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and comma lists; month and
weekday names (jan, mon) are accepted; weekday 0 and 7 are Sunday. As in Vixie cron, when both
day fields are restricted a day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


class CronError(ValueError):
    pass


def _field(text: str, lo: int, hi: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.lower().split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"bad step in {item!r}")
            step = int(step_text)
        if body == "*":
            start, end = lo, hi
        else:
            first, _, last = body.partition("-")
            start = _value(first, names)
            end = _value(last, names) if last else (hi if step_text else start)
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise CronError(f"{item!r} is out of {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: dict[str, int]) -> int:
    if text.isdigit():
        return int(text)
    if text in names:
        return names[text]
    raise CronError(f"bad value {text!r}")


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool
    zone: ZoneInfo

    def _day_matches(self, d: datetime) -> bool:
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def next_after(self, after: datetime) -> datetime:
        """The first firing time strictly after `after` (returned in UTC)."""
        t = after.astimezone(self.zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            # Wall-clock arithmetic across a DST change can land on a non-existent time:
            # normalise through UTC.
            return t.astimezone(UTC)
        raise CronError("the expression never fires")


def parse(expr: str, timezone: str = "utc") -> Cron:
    parts = expr.split()
    if len(parts) != 5:
        raise CronError("a cron expression has 5 fields: minute hour day month weekday")
    names = ({}, {}, {}, MONTHS, DAYS)
    fields = [_field(p, lo, hi, n) for p, (lo, hi), n in zip(parts, BOUNDS, names, strict=True)]
    weekdays = frozenset(d % 7 for d in fields[4])
    try:
        zone = ZoneInfo("UTC" if timezone.lower() == "utc" else timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {timezone!r}") from None
    cron = Cron(
        fields[0], fields[1], fields[2], fields[3], weekdays,
        parts[2] == "*", parts[4] == "*", zone,
    )  # fmt: skip
    cron.next_after(datetime.now(UTC))  # refuse expressions that never fire (Feb 30)
    return cron
