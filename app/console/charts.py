"""Charts as server-rendered SVG: geometry in attributes (never inline style, which the
Content-Security-Policy forbids), colours from console.css by class, and every chart named
for screen readers with the numbers it draws (role="img" + aria-label + <title>)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from markupsafe import Markup, escape

from app.money import ZERO

WIDTH = 600
NONE = "\u2013"  # an en dash: no value


def money(value: Decimal | None, currency: str = "") -> str:
    """1234567.5 -> '1,234,567.50' (display only; the API keeps exact strings)."""
    if value is None:
        return NONE
    text = f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    return f"{text} {currency}".strip()


def percent(ratio: Decimal | None) -> str:
    if ratio is None:
        return NONE
    return f"{(ratio * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} %"


def _x(value: Decimal, scale: Decimal) -> str:
    if scale <= ZERO:
        return "0"
    return str((max(value, ZERO) / scale * WIDTH).quantize(Decimal("0.1")))


def _svg(label: str, height: int, body: str, css: str, data: str = "") -> Markup:
    title = escape(label)
    return Markup(
        f'<svg class="chart {css}" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMid meet" role="img" aria-label="{title}"{data}>'
        f"<title>{title}</title>{body}</svg>")


def exposure_bar(receivables: Decimal, orders: Decimal, held: Decimal, limit: Decimal,
                 currency: str) -> Markup:
    """Open receivables then open orders along one bar, the effective limit as a line, held
    orders (which reserve nothing) as a hatched tail after them."""
    receivables_shown = max(receivables, ZERO)
    exposure = receivables + orders
    scale = max(limit * Decimal("1.25"), receivables_shown + orders + held, Decimal(1))
    r_w, o_w = _x(receivables_shown, scale), _x(orders, scale)
    h_w = _x(held, scale)
    o_x, h_x = r_w, _x(receivables_shown + orders, scale)
    limit_x = _x(limit, scale)
    over = exposure > limit
    label = (f"Exposure {money(exposure, currency)} against an effective limit of "
             f"{money(limit, currency)}: open receivables {money(receivables, currency)}, "
             f"open orders {money(orders, currency)}, held {money(held, currency)}")
    body = (
        '<rect class="track" x="0" y="10" width="600" height="28"/>'
        f'<rect class="seg-receivables" x="0" y="10" width="{r_w}" height="28"/>'
        f'<rect class="seg-orders" x="{o_x}" y="10" width="{o_w}" height="28"/>'
        f'<rect class="seg-held" x="{h_x}" y="10" width="{h_w}" height="28"/>'
        f'<line class="limit{" over" if over else ""}" x1="{limit_x}" x2="{limit_x}" y1="2" '
        'y2="46"/>'
        f'<text class="axis" x="{limit_x}" y="60" text-anchor="middle">limit '
        f"{escape(money(limit))}</text>")
    data = (f' data-exposure="{exposure}" data-limit="{limit}" data-orders-width="{o_w}"'
            f' data-over-limit="{str(over).lower()}"')
    return _svg(label, 66, body, "exposure-bar", data)


def aging_chart(buckets: Sequence[tuple[str, Decimal]], currency: str) -> Markup:
    """Vertical bars, one per aging bucket of the positive open items."""
    top = max([amount for _, amount in buckets] + [Decimal(1)])
    n = len(buckets)
    slot = WIDTH // max(n, 1)
    parts = []
    for i, (name, amount) in enumerate(buckets):
        h = (max(amount, ZERO) / top * 104).quantize(Decimal("0.1"))
        x = i * slot + slot // 6
        w = slot * 2 // 3
        parts.append(
            f'<rect class="bucket bucket-{i}" x="{x}" y="{Decimal(130) - h}" width="{w}" '
            f'height="{h}"/>'
            f'<text class="axis" x="{x + w // 2}" y="148" text-anchor="middle">'
            f"{escape(name)}</text>"
            f'<text class="value" x="{x + w // 2}" y="{Decimal(124) - h}" '
            f'text-anchor="middle">{escape(money(amount))}</text>')
    label = "Aging of open receivables in " + currency + ": " + ", ".join(
        f"{name} days {money(amount, currency)}" for name, amount in buckets)
    return _svg(label, 156, "".join(parts), "aging")


def ratio_bars(rows: Sequence[tuple[str, Decimal]], label: str) -> Markup:
    """Horizontal bars of ratios (utilisation), 100 % marked."""
    top = max([r for _, r in rows] + [Decimal(1)])
    parts = []
    left = 170
    span = WIDTH - left - 70
    for i, (name, ratio) in enumerate(rows):
        y = i * 22 + 4
        w = (max(ratio, ZERO) / top * span).quantize(Decimal("0.1"))
        css = "bar over" if ratio > 1 else "bar high" if ratio >= Decimal("0.8") else "bar"
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape(name[:24])}</text>"
            f'<rect class="{css}" x="{left}" y="{y}" width="{w}" height="16"/>'
            f'<text class="value" x="{left + w + 4}" y="{y + 13}">'
            f"{escape(percent(ratio))}</text>")
    hundred = left + (Decimal(1) / top * span).quantize(Decimal("0.1"))
    height = len(rows) * 22 + 8
    parts.append(f'<line class="limit" x1="{hundred}" x2="{hundred}" y1="0" y2="{height}"/>')
    text = label + ": " + ", ".join(f"{n} {percent(r)}" for n, r in rows)
    return _svg(text, max(height, 30), "".join(parts), "ratios")


def score_build_up(factors: Sequence[tuple[str, int, int]], score: Decimal) -> Markup:
    """Each factor's share of the score (weight x points / sum of weights), stacked to the score."""
    total_weight = sum(w for _, w, _ in factors) or 1
    parts = []
    x = Decimal(0)
    rows = []
    for i, (name, weight, points) in enumerate(factors):
        share = Decimal(weight * points) / total_weight
        w = (share / 100 * WIDTH).quantize(Decimal("0.1"))
        parts.append(f'<rect class="factor factor-{i % 6}" x="{x}" y="8" width="{w}" '
                     f'height="26"><title>{escape(name)}: {share:.2f}</title></rect>')
        rows.append(f"{name} {share:.2f}")
        x += w
    parts.append('<rect class="outline" x="0" y="8" width="600" height="26"/>')
    parts.append('<text class="axis" x="0" y="52">0</text><text class="axis" x="600" '
                 'y="52" text-anchor="end">100</text>')
    label = f"Score {score} out of 100, built from " + ", ".join(rows)
    return _svg(label, 58, "".join(parts), "score")
