"""The OpenAPI document (generated from the request/response schemas) and a page rendering it."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from .openapi import openapi_document

bp = Blueprint("docs", __name__)

_DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>ImageRepo API</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}code{background:#eee}
.op{border:1px solid #ccc;margin:.5em 0;padding:.5em}.m{font-weight:bold;text-transform:uppercase}</style>
</head><body><h1>ImageRepo API</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p>
<div id="ops"></div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const root = document.getElementById('ops');
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const div = document.createElement('div'); div.className = 'op';
      const codes = Object.keys(op.responses).join(', ');
      div.innerHTML = '<span class="m"></span> <code></code><p></p><small></small>';
      div.children[0].textContent = method; div.children[1].textContent = path;
      div.children[2].textContent = op.summary || ''; div.children[3].textContent = 'responses: ' + codes;
      root.appendChild(div);
    }
  }
});
</script></body></html>"""


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document(current_app))


@bp.get("/docs")
def docs_page():
    return Response(_DOCS_PAGE, mimetype="text/html")
