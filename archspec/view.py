"""``archspec view SPEC``: a local page that follows a spec as it is edited.

A standard-library HTTP server, bound to 127.0.0.1, serves one self-contained page (no CDN:
its script and styles are inline) and two JSON answers:

- ``/version``: a digest of the spec's bytes and those of every block library it imports,
  read afresh on each request; the page asks for it about twice a second, and
- ``/state``: for that version, the diagram (the graph style's SVG, each node a group with the
  node's id), the per-layer table and totals (``render.to_html``), every validation problem with
  its file, line and column next to the source lines, and for every diagram node the layers it
  shows: their rows, the ``--explain`` arithmetic and the YAML lines they were written on.

So the page updates itself when the file (or an imported library) changes on disk, without a
reload by hand; a spec with mistakes shows them, and the last good diagram stays greyed behind.
Nothing here imports torch.
"""
from __future__ import annotations

import hashlib
import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import ArchspecError

HOST = "127.0.0.1"
CONTEXT_LINES = 2  # YAML lines shown before and after the line a layer was written on


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


class Watched:
    """The spec and its imports: what to read, and a digest that changes when any of them does."""

    def __init__(self, spec: Path):
        self.spec = spec
        self.imports: list[Path] = []  # as of the last time the spec could be loaded
        try:
            self.find_imports()
        except ArchspecError:
            pass  # the page shows the problem

    def find_imports(self):
        """Load the spec and note its libraries; returns the Spec (a loading error propagates)."""
        from .spec import load

        spec = load(self.spec) if self.spec.is_file() else None
        if spec is not None:
            self.imports = [d.path for d in spec.imported if d.path]
        return spec


    def version(self) -> str:
        digest = hashlib.sha256()
        for path in [self.spec, *self.imports]:
            digest.update(str(path).encode() + b"\0" + _read(path) + b"\0")
        return digest.hexdigest()[:16]


def _source_lines(file: str, line: int) -> dict:
    """The lines around ``line`` of ``file`` (1-based), for the page to show."""
    try:
        text = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {"file": file, "first": line, "lines": [], "mark": line}
    first = max(1, line - CONTEXT_LINES)
    return {"file": file, "first": first, "lines": text[first - 1:line + CONTEXT_LINES], "mark": line}


def state(watched: Watched) -> dict:
    """Everything the page shows for the spec as it is on disk now."""
    from . import pipeline
    from .draw.graph import dot_and_nodes, dot_scene
    from .render import explain_lines, to_html, totals_lines
    try:
        spec = watched.find_imports()
        version = watched.version()
        problems = pipeline.validate(spec)
    except ArchspecError as exc:
        version = watched.version()
        problems = list(exc.problems)
    if problems:
        errors = []
        for p in problems:
            loc = p.location
            entry = {"message": p.message, "file": loc.file if loc else "", "line": loc.line if loc else 0,
                     "col": loc.col if loc else 0}
            if loc and loc.line:
                entry["source"] = _source_lines(loc.file, loc.line)
            errors.append(entry)
        return {"version": version, "ok": False, "errors": errors}
    summary = pipeline.summarize(spec)
    dot, shows = dot_and_nodes(summary)
    svg = dot_scene(dot, title=summary.name).to_svg()
    explain = explain_lines(summary)
    by_path = {f.node.path: explain[i + 1] for i, f in enumerate(summary.analysis.figures)}
    nodes = {}
    for node_id, paths in shows.items():
        node = summary.graph.node(paths[0])
        nodes[f"node-{node_id}"] = {
            "paths": paths,
            "explain": [by_path[p] for p in paths if p in by_path],
            "source": _source_lines(node.location.file, node.location.line) if node.location.line else None,
        }
    return {"version": version, "ok": True, "name": summary.name, "svg": svg.split("?>", 1)[-1],
            "table": to_html(summary, row_ids=True), "totals": totals_lines(summary), "nodes": nodes, "errors": []}


class _Handler(BaseHTTPRequestHandler):
    server: "ViewServer"

    def log_message(self, format, *args):  # quiet: the terminal shows the address only
        pass

    def _send(self, body: bytes, kind: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        route = self.path.split("?", 1)[0]
        if route == "/":
            self._send(PAGE.replace("{{title}}", html.escape(self.server.watched.spec.name)).encode(),
                       "text/html; charset=utf-8")
        elif route == "/version":
            self._send(json.dumps({"version": self.server.watched.version()}).encode(), "application/json")
        elif route == "/state":
            self._send(json.dumps(self.server.current_state()).encode(), "application/json")
        else:
            self._send(b"not found", "text/plain", 404)


class ViewServer(ThreadingHTTPServer):
    """The page's server for one spec; ``port`` 0 picks a free one (``url`` says which)."""

    daemon_threads = True

    def __init__(self, spec: str | Path, port: int = 0, host: str = HOST):
        self.watched = Watched(Path(spec).resolve())
        self._lock = threading.Lock()
        self._cache: dict | None = None
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def current_state(self) -> dict:
        with self._lock:  # one drawing at a time; a state is drawn once per version
            version = self.watched.version()
            if self._cache is None or self._cache["version"] != version:
                try:
                    self._cache = state(self.watched)
                except ArchspecError as exc:  # e.g. no engine to lay the graph out
                    self._cache = {"version": version, "ok": False,
                                   "errors": [{"message": str(exc), "file": "", "line": 0, "col": 0}]}
            return self._cache


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}} · archspec view</title>
<style>
body{font-family:"DejaVu Sans",sans-serif;margin:0;color:#222;display:grid;grid-template-columns:minmax(0,3fr) minmax(320px,2fr);height:100vh}
#left{overflow:auto;padding:12px;border-right:1px solid #ddd}#right{overflow:auto;padding:12px}
#diagram svg{max-width:100%;height:auto}#diagram.stale{opacity:.35}
#diagram g.node{cursor:pointer}#diagram g.node.chosen polygon,#diagram g.node.chosen path{stroke:#d62728;stroke-width:3}
#errors .error{border-left:4px solid #d62728;background:#fff3f3;padding:6px 8px;margin:6px 0}
pre{background:#f6f6f6;padding:6px;margin:4px 0;overflow:auto;font-size:12px}pre .mark{background:#ffe08a;display:block}
table{border-collapse:collapse;font-size:12px}td,th{padding:2px 6px;border-bottom:1px solid #eee}
tr.chosen td{background:#fff4c2}#status{color:#666;font-size:12px}
</style></head><body>
<div id="left"><div id="status">connecting…</div><div id="errors"></div><div id="diagram"></div></div>
<div id="right"><div id="details"><p>Click a node of the diagram to see its rows, its arithmetic and its YAML.</p></div>
<div id="table"></div></div>
<script>
"use strict";
let version = null, current = null;
function esc(s){return String(s).replace(/[&<>"]/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));}
function source(src){
  if(!src||!src.lines.length) return "";
  const lines = src.lines.map((l,i)=>{const n=src.first+i;const t=esc(String(n).padStart(4)+"  "+l);
    return n===src.mark?'<span class="mark">'+t+'</span>':t+"\\n";}).join("");
  return '<div>'+esc(src.file)+'</div><pre class="yaml">'+lines+'</pre>';
}
function choose(id){
  const info = current && current.nodes[id]; if(!info) return;
  document.querySelectorAll("#diagram g.node.chosen, tr.chosen").forEach(e=>e.classList.remove("chosen"));
  const g = document.getElementById(id); if(g) g.classList.add("chosen");
  const rows = info.paths.map(p=>document.getElementById("row-"+p)).filter(r=>r);
  rows.forEach(r=>r.classList.add("chosen"));
  const head = document.querySelector("#table thead");
  document.getElementById("details").innerHTML =
    '<h3 id="chosen-name">'+esc(info.paths[0])+(info.paths.length>1?" … "+esc(info.paths[info.paths.length-1]):"")+'</h3>'+
    '<table class="rows">'+(head?head.outerHTML:"")+rows.map(r=>r.outerHTML.replace(/ id="[^"]*"/,"")).join("")+'</table>'+
    '<pre class="explain">'+info.explain.map(esc).join("\\n")+'</pre>'+source(info.source);
}
function show(s){
  current = s;
  const errors = document.getElementById("errors"), diagram = document.getElementById("diagram");
  errors.innerHTML = s.errors.map(e=>'<div class="error"><b>'+esc(e.file)+':'+e.line+':'+e.col+'</b> '+esc(e.message)+source(e.source)+'</div>').join("");
  if(s.ok){
    diagram.className=""; diagram.innerHTML = s.svg;
    document.getElementById("table").innerHTML = s.table;
    diagram.querySelectorAll("g.node").forEach(g=>g.addEventListener("click",()=>choose(g.id)));
  } else { diagram.className="stale"; }
  document.getElementById("status").textContent = (s.ok?"up to date":s.errors.length+" problem(s)")+" · "+new Date().toLocaleTimeString();
}
async function poll(){
  try{
    const v = (await (await fetch("/version",{cache:"no-store"})).json()).version;
    if(v!==version){ const s = await (await fetch("/state",{cache:"no-store"})).json(); version = s.version; show(s); }
  }catch(e){ document.getElementById("status").textContent = "the server has stopped"; }
  setTimeout(poll, 500);
}
poll();
</script></body></html>
"""


def serve(spec: str | Path, port: int = 0, open_browser: bool = True, announce=print) -> None:
    """Serve the page for ``spec`` until interrupted."""
    server = ViewServer(spec, port)
    announce(f"archspec view: {server.url} (Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        threading.Timer(0.3, webbrowser.open, args=(server.url,)).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
