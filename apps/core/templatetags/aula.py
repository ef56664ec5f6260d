"""Template filters shared by the pages."""

from decimal import ROUND_DOWN, Decimal

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe

from apps.core.markdown import markdown_to_html

register = template.Library()


@register.filter
def local_datetime(value) -> str:
    """An aware datetime as "2026-12-10 09:00 Asia/Shanghai": in the time zone the request
    activated (the user's, apps.core.middleware.UserTimeZoneMiddleware), named."""
    if value is None or value == "":
        return ""
    local = timezone.localtime(value)
    return f"{local:%Y-%m-%d %H:%M} {timezone.get_current_timezone_name()}"


@register.filter
def gpu_time(seconds) -> str:
    """GPU-seconds in words a person reads at a glance: "2.5 s", "12 min 5 s", "10 min",
    "3 h 20 min", "1 h"."""
    if seconds is None or seconds == "":
        return ""
    value = Decimal(seconds)
    if abs(value) < 60:
        tenths = value.quantize(Decimal("0.1"), rounding=ROUND_DOWN)
        text = f"{abs(tenths):f}".removesuffix(".0")
        return f"{'-' if tenths < 0 else ''}{text} s"
    total = int(value.to_integral_value(rounding=ROUND_DOWN))
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours:,} h {minutes} min" if minutes else f"{sign}{hours:,} h"
    if minutes:
        return f"{sign}{minutes} min {secs} s" if secs else f"{sign}{minutes} min"
    return f"{sign}{secs} s"


@register.filter
def percent_of(part, whole) -> int:
    """`part` as a whole percentage of `whole` (0 when `whole` is 0), for meters and bars."""
    whole = Decimal(whole or 0)
    if whole <= 0:
        return 0
    return max(0, min(100, int(Decimal(part or 0) * 100 / whole)))


@register.filter
def markdown(text, heading_offset=0) -> str:
    """Teachers' Markdown as sanitised HTML (apps/core/markdown.py); `markdown:1` moves its
    headings one level down, under the page's own."""
    return mark_safe(markdown_to_html(text, int(heading_offset)))  # noqa: S308 (sanitised by nh3 just above)


@register.filter
def percent(value) -> str:
    """A fraction (0.953) as a percentage with one decimal ("95.3%")."""
    return f"{float(value) * 100:.1f}%"
