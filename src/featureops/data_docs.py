"""Great Expectations Data Docs that render offline: no CDN, no remote logo, no script errors.

GE 1.x's page templates load Bootstrap, jQuery, bootstrap-table, Font Awesome, Vega and the
GX logo from CDNs and an S3 bucket: offline, the pages are unstyled, the index tables stay
empty (bootstrap-table fills them from JavaScript) and every inline script fails. GE's
``custom_views_directory`` cannot replace its own templates (its package loader comes first),
so the site config names the two view classes below (GE's documented ``view`` /
``module_name`` / ``class_name`` plug-in point): they render with GE's templates except a
handful given here first: page heads with local styles only, tables rendered server-side,
a small vanilla script for collapses, tabs, clickable rows and the "failed only" filter,
the logo from the site's own ``static/images``.

Imported by GE when it builds the docs (``great_expectations`` is imported here at module
level: import this module only where GE is used).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import ChoiceLoader, DictLoader

# Just the Bootstrap 4 classes GE's templates use, and Font Awesome's icons as characters.
OFFLINE_CSS = """
*,::after,::before{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:.95rem;
line-height:1.5;color:#212529;background:#fff}
a{color:#0062cc;text-decoration:none}a:hover{text-decoration:underline}
h1,h2,h3,h4,h5,h6{margin:.4rem 0 .6rem;font-weight:500;line-height:1.2}
.container-fluid{width:100%;padding:0 15px}
.row{display:flex;flex-wrap:wrap;margin:0 -15px}
[class*=col-]{position:relative;width:100%;padding:0 15px}
@media (min-width:768px){.col-md-2{flex:0 0 16.66%;max-width:16.66%}
.col-md-10{flex:0 0 83.33%;max-width:83.33%}.d-md-block{display:block!important}
.d-md-inline-flex{display:inline-flex!important}}
.col-12{flex:0 0 100%;max-width:100%}.col-6{flex:0 0 50%;max-width:50%}
.d-none{display:none}.d-flex{display:flex}.flex-column{flex-direction:column}
.justify-content-center{justify-content:center}.align-items-center{align-items:center}
.float-left{float:left}.mr-auto{margin-right:auto}.h-100{height:100%}
.sticky-top,.sticky{position:sticky;top:0;z-index:10}.fixed-bottom{position:fixed;bottom:0}
.m-0{margin:0}.m-1{margin:.25rem}.m-2{margin:.5rem}.mt-0{margin-top:0}.mt-1{margin-top:.25rem}
.mt-3{margin-top:1rem}.mb-0{margin-bottom:0}.mb-1{margin-bottom:.25rem}.mb-2{margin-bottom:.5rem}
.mb-3{margin-bottom:1rem}.mb-4{margin-bottom:1.5rem}.ml-1{margin-left:.25rem}
.ml-2{margin-left:.5rem}.mr-2{margin-right:.5rem}.p-0{padding:0}.p-1{padding:.25rem}
.p-2{padding:.5rem}.p-3{padding:1rem}.px-0{padding-left:0;padding-right:0}
.pt-4{padding-top:1.5rem}.pb-4{padding-bottom:1.5rem}.pl-5{padding-left:3rem}
.pr-5{padding-right:3rem}.pb-1{padding-bottom:.25rem}
.navbar{display:flex;align-items:center;padding:.5rem 1rem;background:#fff}
.border-bottom{border-bottom:1px solid #dee2e6}.border{border:1px solid #dee2e6}
.navbar-brand img{vertical-align:middle}
.breadcrumb{display:flex;list-style:none;padding:.3rem .8rem;margin:0 0 0 .5rem;
background:#e9ecef;border-radius:.25rem}
.breadcrumb-item+.breadcrumb-item::before{content:"/";padding:0 .5rem;color:#6c757d}
.bg-light{background:#f8f9fa}.rounded{border-radius:.25rem}
.card{border:1px solid rgba(0,0,0,.125);border-radius:.25rem;margin-bottom:1rem;background:#fff}
.card-header{padding:.5rem .75rem;background:rgba(0,0,0,.03);border-bottom:1px solid rgba(0,0,0,.125)}
.card-body{padding:.75rem}
.table{width:100%;margin-bottom:1rem;border-collapse:collapse}
.table td,.table th{padding:.4rem;vertical-align:top;border-top:1px solid #dee2e6;text-align:left}
.table thead th{border-bottom:2px solid #dee2e6}.table-sm td,.table-sm th{padding:.25rem}
.table-bordered td,.table-bordered th{border:1px solid #dee2e6}
.table-responsive{display:block;width:100%;overflow-x:auto}
tr.clickable-row{cursor:pointer}tr.clickable-row:hover{background:#f1f5fb}
.badge{display:inline-block;padding:.2em .4em;font-size:80%;font-weight:600;border-radius:.25rem;
background:#6c757d;color:#fff}
.alert{padding:.5rem .75rem;margin-bottom:.5rem;border:1px solid transparent;border-radius:.25rem}
.alert-secondary{background:#e2e3e5;color:#383d41}.alert-info{background:#d1ecf1;color:#0c5460}
.text-danger{color:#dc3545}.text-success{color:#28a745}.text-center{text-align:center}
.lead{font-size:1.1rem;font-weight:300}
.btn{display:inline-block;padding:.25rem .6rem;border:1px solid #6c757d;border-radius:.25rem;
background:#fff;cursor:pointer;font-size:.9rem}
.btn-primary{background:#007bff;border-color:#007bff;color:#fff}.btn-primary.active{background:#0056b3}
.btn-group{display:inline-flex}.btn-group input{display:none}
.nav{display:flex;flex-wrap:wrap;list-style:none;padding:0;margin:0}
.nav-tabs{border-bottom:1px solid #dee2e6}.nav-link{display:block;padding:.4rem 1rem}
.nav-tabs .nav-link.active{border:1px solid #dee2e6;border-bottom-color:#fff;border-radius:.25rem .25rem 0 0}
.nav-pills .nav-link.active{background:#007bff;color:#fff;border-radius:.25rem}
.tab-pane{display:none}.tab-pane.active{display:block}
.collapse:not(.show){display:none}.invisible{visibility:hidden}
.fas{font-style:normal}.fa-check-circle::before{content:"\\2714";color:#28a745}
.fa-times::before{content:"\\2716";color:#dc3545}.fa-question-circle::before{content:"?"}
.fa-info-circle::before{content:"\\2139"}.fa-exclamation-triangle::before{content:"\\26A0"}
.fa-check::before{content:"\\2714";color:#28a745}
footer.ge-footer{position:static;height:auto;padding:1rem 3rem;color:#6c757d;font-size:.85rem;
background:none;border:0;text-align:left}
@media (prefers-color-scheme:dark){.navbar-brand a img{visibility:visible}}
"""

# One small script instead of jQuery + Bootstrap + bootstrap-table.
OFFLINE_JS = """
document.addEventListener("click", function (event) {
  var toggle = event.target.closest("[data-toggle]");
  if (toggle) {
    var target = document.querySelector(toggle.getAttribute("href"));
    if (target && toggle.dataset.toggle === "collapse") {
      event.preventDefault();
      target.classList.toggle("show");
    } else if (target && toggle.dataset.toggle === "tab") {
      event.preventDefault();
      toggle.closest(".nav").querySelectorAll(".nav-link").forEach(function (a) {
        a.classList.toggle("active", a === toggle);
      });
      target.parentElement.querySelectorAll(":scope > .tab-pane").forEach(function (pane) {
        pane.classList.toggle("active", pane === target);
        pane.classList.toggle("show", pane === target);
      });
    }
    return;
  }
  var row = event.target.closest("tr[data-href]");
  if (row && !event.target.closest("a")) {
    window.location = row.dataset.href;
  }
});
function featureopsShowSucceeded(show) {
  document.querySelectorAll(".hide-succeeded-validation-target-child").forEach(function (el) {
    el.parentElement.style.display = show ? "" : "none";
  });
  document.querySelectorAll(".hide-succeeded-validation-target").forEach(function (el) {
    el.style.display = show ? "" : "none";
  });
  document.querySelectorAll(".hide-succeeded-validations-column-section-target-child")
    .forEach(function (el) {
      var section = el.parentElement.parentElement;
      section.style.display = show ? "" : "none";
      document.querySelectorAll('a[href$="' + section.id + '"]').forEach(function (a) {
        a.style.display = show ? "" : "none";
      });
    });
}
"""

_HEAD = """
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <meta charset="UTF-8">
    <style>{% include 'data_docs_default_styles.css' %}</style>
    <style>{% include 'featureops_offline.css' %}</style>
    <style>{% include 'data_docs_custom_styles.css' ignore missing %}</style>
    {% include 'js_script_imports.j2' %}
    {% include 'favicon.j2' %}
"""

_SECTIONS = """
        {% for section in sections %}
          {% set section_loop = loop -%}
          {% include 'section.j2' %}
        {% endfor %}
"""

TEMPLATES: dict[str, str] = {
    "featureops_offline.css": OFFLINE_CSS,
    "js_script_imports.j2": "<script>" + OFFLINE_JS + "</script>",
    "page.j2": (
        "<!DOCTYPE html>\n<html>\n  <head>\n    <title>Data documentation compiled by Great"
        " Expectations</title>"
        + _HEAD
        + """  </head>
  <body>
    {% include 'top_navbar.j2' %}
    <div class="container-fluid pt-4 pb-4 pl-5 pr-5">
      <div class="row">
        {% include 'sidebar.j2' %}
        <div class="col-md-10 col-lg-10 col-xs-12 pl-md-4 pr-md-3">"""
        + _SECTIONS
        + """        </div>
      </div>
    </div>
    {% include 'cloud-footer.j2' %}
  </body>
</html>
"""
    ),
    "page_minimal.j2": (
        "<!DOCTYPE html>\n<html>\n  <head>\n    <title>Data documentation compiled by Great"
        " Expectations</title>"
        + _HEAD
        + """  </head>
  <body>
    <div class="container-fluid pt-4 pb-4 pl-5 pr-5">
      <div class="row">
        <div class="col-12">"""
        + _SECTIONS
        + """        </div>
      </div>
    </div>
  </body>
</html>
"""
    ),
    "index_page.j2": (
        "<!DOCTYPE html>\n<html>\n  <head>\n    <title>Data Docs created by Great"
        " Expectations</title>"
        + _HEAD
        + """  </head>
  <body>
    {% include 'top_navbar.j2' %}
    <div class="container-fluid pt-4 pb-4 pl-5 pr-5">
      <div class="row">
        {% include 'sidebar.j2' %}
        <div class="col-md-10 col-lg-10 col-xs-12 pl-md-4 pr-md-3">"""
        + _SECTIONS
        + """        </div>
      </div>
    </div>
    {% include 'cloud-footer.j2' %}
  </body>
</html>
"""
    ),
    # GE's navbar, with the logo from the site's own static/images instead of S3.
    "top_navbar.j2": """
{% if expectation_suite_name %}
  {% set expectation_suite_name_dot_count = expectation_suite_name.count(".") -%}
{% endif %}
{% if "ValidationResults" in renderer_type or "ProfilingResults" in renderer_type %}
  {% set home_url =  ((expectation_suite_name_dot_count + 4) * "../") + "index.html" -%}
  {% set static_images_dir = ((expectation_suite_name_dot_count + 4) * "../") + "static/images/" -%}
{% elif "ExpectationSuite" in renderer_type %}
  {% set home_url = ((expectation_suite_name_dot_count + 1) * "../") + "index.html" -%}
  {% set static_images_dir = ((expectation_suite_name_dot_count + 1) * "../") + "static/images/" -%}
{% else %}
  {% set home_url = "#" -%}
  {% set static_images_dir = "./static/images/" -%}
{% endif %}
<nav class="navbar sticky-top border-bottom" style="height: 70px">
  <div class="mr-auto">
    <nav class="d-flex align-items-center">
      <div class="navbar-brand m-0 h-100">
        <a href="{{ home_url }}"><img src="{{ static_images_dir }}logo-long.png"
          alt="Great Expectations" style="width: auto; height: 50px"/></a>
      </div>
      {% if page_title %}
        <ol class="ge-breadcrumbs breadcrumb">
          <li class="ge-breadcrumbs-item breadcrumb-item"><a href="{{ home_url }}">Home</a></li>
          <li class="ge-breadcrumbs-item breadcrumb-item active" aria-current="page">{{ page_title }}</li>
        </ol>
      {% endif %}
    </nav>
  </div>
</nav>
""",
    # GE's favicon path is one level short on validation pages (a 404 in the console).
    "favicon.j2": """
{% if expectation_suite_name %}
  {% set expectation_suite_name_dot_count = expectation_suite_name.count(".") -%}
{% endif %}
{% if "ValidationResults" in renderer_type or "ProfilingResults" in renderer_type %}
  {% set static_images_dir = ((expectation_suite_name_dot_count + 4) * "../") + "static/images/" -%}
{% elif "ExpectationSuite" in renderer_type %}
  {% set static_images_dir = ((expectation_suite_name_dot_count + 1) * "../") + "static/images/" -%}
{% else %}
  {% set static_images_dir = "./static/images/" -%}
{% endif %}
<link rel="shortcut icon" href="{{ static_images_dir }}favicon.ico" type="image/x-icon"/>
""",
    "cloud-footer.j2": (
        '<footer class="ge-footer">Rendered by Great Expectations {{ ge_version }}'
        " for featureops (offline: no external assets).</footer>"
    ),
    "cta_footer.j2": "",
    "bootstrap_table_js_functions.j2": "",
    # bootstrap-table filled these tables from JavaScript: render them here instead,
    # sorted as configured, rows linking to their page.
    "bootstrap_table.j2": """{% include 'content_block_header.j2' %}
{% if "styling" in content_block and "body" in content_block["styling"] -%}
  {% set content_block_body_styling = content_block["styling"]["body"] | render_styling -%}
{% else -%}
  {% set content_block_body_styling = "" -%}
{% endif -%}
{% set table_options = content_block.get("table_options", {}) %}
{% set table_id = content_block_id ~ "-body-table" %}
{% set table_columns = content_block["table_columns"] %}
{% set rows = content_block["table_data"] | render_bootstrap_table_data %}
{% set ns = namespace(key=table_options.get("sortName")) %}
{% for column in table_columns %}
  {% if column.get("field") == table_options.get("sortName") and column.get("sortName") %}
    {% set ns.key = column.get("sortName") %}
  {% endif %}
{% endfor %}
{% if ns.key %}
  {% set rows = rows | sort(attribute=ns.key, reverse=table_options.get("sortOrder") == "desc") %}
{% endif %}
<table id="{{ table_id }}" class="table table-sm"
  {{ content_block_body_styling | replace("{{section_id}}", section_id) | replace("{{content_block_id}}", content_block_id) }}>
  <thead>
    {% if "title_row" in content_block %}
      <tr><th class="text-center p-2" colspan="{{ table_columns | length }}">{{ content_block["title_row"] | render_content_block }}</th></tr>
    {% endif %}
    <tr>{% for column in table_columns %}<th>{{ column.get("title", "") }}</th>{% endfor %}</tr>
  </thead>
  <tbody>
    {% for row in rows %}
      <tr{% if row.get("_table_row_link_path") %} class="clickable-row" data-href="{{ row["_table_row_link_path"] }}"{% endif %}>
        {% for column in table_columns %}<td>{{ row.get(column.get("field"), "") | safe }}</td>{% endfor %}
      </tr>
    {% endfor %}
  </tbody>
</table>
""",
    "page_action_card.j2": """<div class="card mb-3">
  <div class="card-header p-2"><strong>Actions</strong></div>
  <div class="card-body p-3">
    {% if renderer_type in ["ValidationResultsPageRenderer"] %}
      <p class="card-text p-0 mb-1">Validation Filter:</p>
      <div class="btn-group">
        <button class="btn btn-primary" onclick="featureopsShowSucceeded(true)">Show All</button>
        <button class="btn btn-primary" onclick="featureopsShowSucceeded(false)">Failed Only</button>
      </div>
    {% endif %}
  </div>
</div>
""",
    # GE's chart blocks need Vega, which is not bundled: show the chart's spec instead of
    # failing (none of the expectations featureops declares renders one).
    "graph.j2": """{% include 'content_block_header.j2' %}
<div class="show-scrollbars"><pre class="featureops-graph">{{ content_block["graph"] | tojson }}</pre></div>
""",
}


def _offline(view: DefaultJinjaPageView) -> None:
    env = view.env
    loader = env.loader
    assert loader is not None
    # GE's own stylesheet, less its one remote image (the dark-mode logo)
    css = loader.get_source(env, "data_docs_default_styles.css")[0]
    css = re.sub(r"url\((['\"]?)https?://[^)]*\)", "none", css)
    templates = {**TEMPLATES, "data_docs_default_styles.css": css}
    env.loader = ChoiceLoader([DictLoader(templates), loader])


class OfflinePageView(DefaultJinjaPageView):
    """GE's page view (suites, validation results) with the offline templates first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offline(self)


class OfflineIndexPageView(DefaultJinjaIndexPageView):
    """GE's index page view with the offline templates first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offline(self)


def site_config(base_directory: str | Path) -> dict[str, Any]:
    """A GE ``SiteBuilder`` config writing offline Data Docs into ``base_directory``."""
    page_view = {"module_name": __name__, "class_name": OfflinePageView.__name__}
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(base_directory),
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "view": {"module_name": __name__, "class_name": OfflineIndexPageView.__name__},
        },
        "site_section_builders": {
            name: {"view": page_view} for name in ("expectations", "validations", "profiling")
        },
    }
