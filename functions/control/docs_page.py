"""The `/docs` page: the API's OpenAPI document, rendered in the browser by the page itself.

FastAPI's page loads Swagger UI's script and CSS from cdn.jsdelivr.net and asks for
`/openapi.json` at the host's root: on a network with no route to the internet (where aiaas is
often run) it was a blank page, and behind a proxy at a path prefix (`/ml/` stripped by
`proxy_pass http://aiaas/`, an API Gateway stage or custom-domain base path) it asked for the
wrong document. This page has no asset but the document, asked for by a URL relative to the
page, so it resolves under whatever prefix the browser saw; its example calls are built from
the same base.

Why not Swagger UI from a package: swagger-ui-bundle (PyPI 1.1.0) ships Swagger UI 4.15.5,
which cannot render FastAPI's OpenAPI 3.1 document (3.1 needs Swagger UI 5), and adds Jinja2;
swagger-ui-py (25.7.1, Swagger UI 5.25) is 25 MB installed, Swagger Editor included, and
installs a top-level `test` package of its own. The control extra is +14 MiB in all.
"""

from __future__ import annotations

# What the page's script may reach: only its own origin (the document and example calls are
# same-origin), and inline script and style, which is all the page has.
CSP = (
    "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
)

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 1.5rem;color:#1b1b1b}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.2rem;border-bottom:1px solid #ccc;margin-top:2rem}
details.op{border:1px solid #ddd;border-radius:4px;margin:.4rem 0}
details.op>summary{cursor:pointer;padding:.35rem .6rem;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:4.2rem;font-weight:bold;color:#fff;border-radius:3px;
text-align:center;margin-right:.5rem;padding:0 .3rem}
.GET{background:#2f7fc1}.POST{background:#2e9a5b}.PUT{background:#c47f17}.DELETE{background:#c0392b}
.PATCH{background:#7b4fb3}.HEAD,.OPTIONS{background:#666}
.s{color:#555;font-family:system-ui,sans-serif;margin-left:.6rem}.body{padding:.2rem 1rem 1rem}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:13px}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
#error{color:#b00020;white-space:pre-wrap}
"""

# The script builds every node with textContent, never innerHTML: the document's descriptions
# carry user-supplied names (models, examples), which must not become markup.
_SCRIPT = """
(function () {
  var main = document.getElementById("api");
  var specUrl = new URL(main.getAttribute("data-openapi"), location.href);
  var base = new URL(".", specUrl).href.replace(/\\/$/, "");
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function schemaOf(schema) {
    if (!schema) return "";
    if (schema.$ref) return schema.$ref.split("/").pop();
    if (schema.type === "array") return schemaOf(schema.items) + "[]";
    var alts = schema.anyOf || schema.oneOf;
    if (alts) return alts.map(schemaOf).join(" | ");
    return (schema.type || "any") + (schema.pattern ? " " + schema.pattern : "");
  }
  function operation(path, method, op) {
    var box = el("details", undefined, "op");
    var head = el("summary");
    head.appendChild(el("span", method.toUpperCase(), "m " + method.toUpperCase()));
    head.appendChild(document.createTextNode(path));
    if (op.summary) head.appendChild(el("span", op.summary, "s"));
    box.appendChild(head);
    var body = el("div", undefined, "body");
    if (op.description) body.appendChild(el("p", op.description));
    var params = op.parameters || [];
    if (params.length) {
      var table = el("table");
      var row = el("tr");
      ["parameter", "in", "required", "schema", "description"].forEach(function (h) {
        row.appendChild(el("th", h));
      });
      table.appendChild(row);
      params.forEach(function (p) {
        var r = el("tr");
        [p.name, p.in, p.required ? "yes" : "no", schemaOf(p.schema), p.description || ""]
          .forEach(function (v) { r.appendChild(el("td", v)); });
        table.appendChild(r);
      });
      body.appendChild(table);
    }
    var curl = "curl -X " + method.toUpperCase() + " '" + base + path + "'";
    if (op.requestBody) {
      var content = op.requestBody.content || {};
      Object.keys(content).forEach(function (type) {
        body.appendChild(el("p", "Body (" + type + "): " + schemaOf(content[type].schema)));
      });
      if (content["application/json"]) curl += " -H 'Content-Type: application/json' -d '{...}'";
    }
    body.appendChild(el("pre", curl));
    var answers = el("ul");
    Object.keys(op.responses || {}).forEach(function (code) {
      var answer = op.responses[code];
      var types = Object.keys(answer.content || {}).map(function (t) {
        return t + " " + schemaOf(answer.content[t].schema);
      });
      answers.appendChild(el("li", code + " " + (answer.description || "") +
        (types.length ? " (" + types.join(", ") + ")" : "")));
    });
    body.appendChild(el("p", "Responses:"));
    body.appendChild(answers);
    box.appendChild(body);
    return box;
  }
  function render(spec) {
    var info = spec.info || {};
    document.title = info.title || document.title;
    main.appendChild(el("h1", (info.title || "API") + " " + (info.version || "")));
    if (info.description) main.appendChild(el("pre", info.description));
    main.appendChild(el("p", "OpenAPI document: " + specUrl.href));
    var groups = {};
    Object.keys(spec.paths || {}).forEach(function (path) {
      Object.keys(spec.paths[path]).forEach(function (method) {
        var op = spec.paths[path][method];
        if (typeof op !== "object" || method === "parameters") return;
        var tag = (op.tags && op.tags[0]) || "other";
        (groups[tag] = groups[tag] || []).push(operation(path, method, op));
      });
    });
    Object.keys(groups).forEach(function (tag) {
      main.appendChild(el("h2", tag));
      groups[tag].forEach(function (node) { main.appendChild(node); });
    });
    var schemas = (spec.components || {}).schemas || {};
    if (Object.keys(schemas).length) main.appendChild(el("h2", "Schemas"));
    Object.keys(schemas).sort().forEach(function (name) {
      var box = el("details", undefined, "op");
      box.appendChild(el("summary", name));
      box.appendChild(el("pre", JSON.stringify(schemas[name], null, 2)));
      main.appendChild(box);
    });
  }
  fetch(specUrl, {credentials: "same-origin"}).then(function (answer) {
    return answer.text().then(function (text) {
      if (!answer.ok) throw new Error(answer.status + " " + text);
      return JSON.parse(text);
    });
  }).then(render).catch(function (err) {
    document.getElementById("error").textContent =
      "Could not read the OpenAPI document " + specUrl.href + ": " + err.message;
  });
})();
"""


def docs_html(slashed: bool) -> str:
    """The page, asking for the document next to it: `openapi.json` from `/docs`, and
    `../openapi.json` from `/docs/` (a browser resolves relative URLs from the last `/`)."""
    spec = "../openapi.json" if slashed else "openapi.json"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>aiaas API</title>'
        f"<style>{_STYLE}</style></head><body>"
        f'<main id="api" data-openapi="{spec}"></main><p id="error"></p>'
        f"<noscript>This page renders the API's OpenAPI document with JavaScript; read the "
        f'document itself: <a href="{spec}">openapi.json</a></noscript>'
        f"<script>{_SCRIPT}</script></body></html>"
    )
