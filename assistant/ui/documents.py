"""The Documents tab: upload, replace and delete documents with an admin key, through ``/api/documents``.

The tab is a small browser client of the HTTP API (``assistant/static/documents.js``) rather than gradio
events: the UI keeps taking text only (gradio's upload route stays off), and every change to the documents
passes the one admin check the API applies. It exists only when admin keys are configured.
"""

from __future__ import annotations

import html
from importlib import resources

import gradio as gr

from assistant.ingest.loaders import LOADERS

CSS = """
.docs-row{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0}
.docs-row input[type=password]{min-width:16em;padding:4px 6px}
.docs-row button,.docs-delete{padding:4px 12px;border:1px solid var(--border-color-primary);border-radius:6px;
  background:var(--button-secondary-background-fill);cursor:pointer}
.docs-status{min-height:1.4em;margin:6px 0}
.docs-status.bad{color:#b91c1c}
.docs-limits{color:var(--body-text-color-subdued);font-size:.9em}
.docs-table{border-collapse:collapse;width:100%;font-size:.92em}
.docs-table th,.docs-table td{border-bottom:1px solid var(--border-color-primary);padding:4px 6px;text-align:left;
  vertical-align:top;overflow-wrap:anywhere}
.docs-state.skipped{color:#b45309}
"""


def documents_panel() -> gr.HTML:
    """The tab's content: admin key, file picker, status line and the documents table."""
    accept = html.escape(",".join(sorted(LOADERS)))
    template = f"""
<div class="docs">
  <p>Upload, replace and remove the documents the assistant answers from. Uploading a file with the name of
  an existing document replaces it. Every change needs an admin key (<code>ASSISTANT_SECURITY__ADMIN_KEYS</code>).</p>
  <div class="docs-row">
    <label>Admin key <input type="password" class="docs-key" autocomplete="off" spellcheck="false"></label>
    <button type="button" class="docs-load">Show documents</button>
  </div>
  <div class="docs-row">
    <input type="file" class="docs-file" accept="{accept}" aria-label="Document to upload">
    <button type="button" class="docs-upload">Upload</button>
  </div>
  <p class="docs-limits"></p>
  <p class="docs-status" role="status" aria-live="polite"></p>
  <table class="docs-table" hidden>
    <thead><tr><th>Name</th><th>Title</th><th>Type</th><th>Size</th><th>Passages</th><th>Indexed</th>
    <th>Status</th><th></th></tr></thead>
    <tbody></tbody>
  </table>
</div>"""
    script = resources.files("assistant").joinpath("static/documents.js").read_text(encoding="utf-8")
    return gr.HTML(html_template=template, css_template=CSS, js_on_load=script, elem_id="documents-panel")
