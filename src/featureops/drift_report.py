"""A self-contained HTML drift report: summary table and one inline SVG chart per feature.

Nothing is loaded from anywhere: styles inline, charts as inline SVG, system fonts, and an
empty inline favicon (so a browser asks for none when the report is served over HTTP).
``tests/browser`` opens it in chromium with every outside request blocked.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, select_autoescape

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>featureops drift report</title>
<link rel="icon" href="data:,">
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.drift{background:#fde2e1}.ok{background:#e6f4ea}.banner{padding:.8rem;font-weight:bold}
.chart{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem}
</style></head><body>
<h1>Drift report</h1>
<p class="banner {{ 'drift' if r.alert else 'ok' }}">
{% if r.alert %}ALERT: {% if r.feature_drift %}feature drift ({{ r.drifted_features|length }} of
{{ r.features|length }} features){% endif %}{% if r.prediction_drift %} prediction drift{% endif %}
{% if r.performance_drop %} performance drop{% endif %}{% else %}No drift above the thresholds.{% endif %}
</p>
<p>Model: {{ r.model }} (sha256 {{ r.model_sha256[:12] }}). Reference: {{ r.reference_rows }} training rows.
Current window: {{ r.current_window[0] }} to {{ r.current_window[1] }} ({{ r.current_rows }} rows).</p>
<p>Thresholds: PSI &gt; {{ r.thresholds.psi }}, KS &gt; {{ r.thresholds.ks }},
chi-square p &lt; {{ r.thresholds.chi2_pvalue }}, missing-rate change &gt; {{ r.thresholds.missing_rate_delta }}.</p>
<h2>Summary</h2>
<table id="summary"><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS / chi2 p</th>
<th>ref mean</th><th>cur mean</th><th>missing Δ</th><th>drift</th></tr>
{% for name, f in r.features.items() %}
<tr class="{{ 'drift' if f.drift else 'ok' }}"><td>{{ name }}</td><td>{{ f.kind }}</td>
<td>{{ fmt(f.psi) }}</td><td>{{ fmt(f.ks if f.kind == 'numeric' else f.chi2_pvalue) }}</td>
<td>{{ fmt(f.reference_mean) }}</td><td>{{ fmt(f.current_mean) }}</td>
<td>{{ fmt(f.missing_rate_delta) }}</td><td>{{ 'yes' if f.drift else 'no' }}</td></tr>
{% endfor %}
<tr class="{{ 'drift' if r.prediction.drift else 'ok' }}"><td><b>prediction</b></td><td>probability</td>
<td>{{ fmt(r.prediction.psi) }}</td><td></td><td>{{ fmt(r.prediction.reference_mean) }}</td>
<td>{{ fmt(r.prediction.current_mean) }}</td><td></td><td>{{ 'yes' if r.prediction.drift else 'no' }}</td></tr>
</table>
{% if r.performance.current %}
<h2>Performance on the labelled part of the window</h2>
<table><tr><th></th><th>PR AUC</th><th>ROC AUC</th><th>F1</th><th>rows</th></tr>
<tr><td>reference (training)</td><td>{{ fmt(r.performance.reference.pr_auc) }}</td>
<td>{{ fmt(r.performance.reference.roc_auc) }}</td><td>{{ fmt(r.performance.reference.f1) }}</td>
<td>{{ r.performance.reference.rows }}</td></tr>
<tr><td>current</td><td>{{ fmt(r.performance.current.pr_auc) }}</td><td>{{ fmt(r.performance.current.roc_auc) }}</td>
<td>{{ fmt(r.performance.current.f1) }}</td><td>{{ r.performance.current.rows }}</td></tr></table>
{% endif %}
<h2>Distributions</h2>
<p class="legend"><span style="background:#4e79a7"></span>reference<span style="background:#f28e2b"></span>current</p>
<div class="chart prediction">{{ svg("prediction", r.prediction)|safe }}</div>
{% for name, f in r.features.items() %}<div class="chart feature">{{ svg(name, f)|safe }}</div>{% endfor %}
</body></html>
"""

WIDTH, HEIGHT = 260, 120


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
    return str(value)


def _svg(name: str, result: dict[str, Any]) -> str:
    """Reference vs current bars (densities) for one feature."""
    if "histogram" in result:
        ref, cur = result["histogram"]["reference"], result["histogram"]["current"]
        labels = [
            f"{result['histogram']['edges'][0]:.3g}",
            f"{result['histogram']['edges'][-1]:.3g}",
        ]
    elif "categories" in result:
        ref, cur = result["categories"]["reference"], result["categories"]["current"]
        labels = [", ".join(result["categories"]["names"][:4]), ""]
    else:
        return f"<svg width='{WIDTH}' height='40'><text x='4' y='20'>{name}: no data</text></svg>"
    top = max([*ref, *cur, 1e-9])
    n = max(len(ref), 1)
    bar = (WIDTH - 10) / n / 2
    rects = []
    for i, (a, b) in enumerate(zip(ref, cur, strict=True)):
        x = 5 + i * 2 * bar
        for j, (v, color) in enumerate(((a, "#4e79a7"), (b, "#f28e2b"))):
            h = (HEIGHT - 35) * v / top
            rects.append(
                f"<rect x='{x + j * bar:.1f}' y='{HEIGHT - 20 - h:.1f}' width='{bar:.1f}' "
                f"height='{h:.1f}' fill='{color}'/>"
            )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' role='img' "
        f"aria-label='{name}'><text x='4' y='12' font-size='11'>{name}"
        f"{' (drift)' if result.get('drift') else ''}</text>{''.join(rects)}"
        f"<text x='4' y='{HEIGHT - 5}' font-size='9'>{labels[0]}</text>"
        f"<text x='{WIDTH - 4}' y='{HEIGHT - 5}' font-size='9' text-anchor='end'>{labels[1]}</text></svg>"
    )


def render_report(result: dict[str, Any]) -> str:
    """The HTML report for a monitoring result (no external assets)."""
    env = Environment(autoescape=select_autoescape(default=True))
    template = env.from_string(TEMPLATE)
    return template.render(r=result, fmt=_fmt, svg=_svg)
