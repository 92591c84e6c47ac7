"""archspec view: the page's state for a spec as it changes on disk, and the page in a real
headless Chromium (skipped where Debian's chromium or the playwright package is missing)."""
from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest

from archspec.view import ViewServer, Watched, state

SPEC = """archspec: 1
name: viewed
imports: [lib.yaml]
input: [1, 16, 16]
layers:
  - {conv2d: {out: 8, kernel: 3, padding: 1}, name: first}
  - relu
  - {pair: {c: 4}, name: body}
  - global_avgpool
  - {linear: {out: 10}, name: head}
"""
LIB = """archspec: 1
blocks:
  pair:
    params: {c: int}
    body:
      - {conv2d: {out: $c, kernel: 3, padding: 1}, name: conv}
      - relu
"""


@pytest.fixture
def spec(tmp_path):
    (tmp_path / "lib.yaml").write_text(LIB, encoding="utf-8")
    path = tmp_path / "net.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


@pytest.fixture
def server(spec):
    srv = ViewServer(spec)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.loads(answer.read())


def test_state_has_the_diagram_table_and_each_nodes_rows_arithmetic_and_yaml(spec):
    s = state(Watched(spec))
    assert s["ok"] and s["errors"] == [] and "<svg" in s["svg"] and 'id="node-first"' in s["svg"]
    assert 'id="row-first"' in s["table"] and 'id="row-body.conv"' in s["table"]
    first = s["nodes"]["node-first"]
    assert first["paths"] == ["first", "relu1"]  # the compact node shows the relu too
    assert first["explain"][0].startswith("first  CONV3-8: [16x16x8]")
    assert first["source"]["mark"] == 6 and "name: first" in first["source"]["lines"][first["source"]["mark"] - first["source"]["first"]]
    body = s["nodes"]["node-body.conv"]
    assert body["source"]["file"].endswith("lib.yaml")  # a layer from a library points at the library


def test_every_problem_comes_with_its_line(spec):
    spec.write_text(SPEC.replace("out: 8, kernel: 3", "out: 8, kernel: 99").replace("global_avgpool", "bogus"),
                    encoding="utf-8")
    s = state(Watched(spec))
    assert not s["ok"] and len(s["errors"]) >= 1
    assert all(e["line"] > 0 and e["file"].endswith("net.yaml") for e in s["errors"])
    assert any(e["line"] == 9 and "bogus" in e["message"] for e in s["errors"])


def test_the_version_follows_the_spec_and_its_imports(spec, server):
    url = server.url
    assert url.startswith("http://127.0.0.1:")
    v1 = get(url + "version")["version"]
    assert get(url + "state")["version"] == v1 and get(url + "version")["version"] == v1
    lib = spec.parent / "lib.yaml"
    lib.write_text(LIB.replace("kernel: 3", "kernel: 5").replace("padding: 1", "padding: 2"), encoding="utf-8")
    v2 = get(url + "version")["version"]
    assert v2 != v1
    assert "5×5, 4" in get(url + "state")["svg"]
    page = urllib.request.urlopen(url, timeout=60).read().decode()
    assert "<script>" in page and "http" not in page.split("<script>")[1]  # nothing fetched from elsewhere


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_the_page_in_a_real_browser_follows_edits(spec, server):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_selector("#diagram g.node#node-first", timeout=60_000)
            assert "8×16×16" in page.inner_text("#diagram")
            page.click("#node-first")
            details = page.inner_text("#details")
            assert "CONV3-8" in details and "name: first" in details and "conv2d 3×3, 8" in details
            assert page.get_attribute("#row-first", "class") == "chosen"

            spec.write_text(SPEC.replace("out: 8,", "out: 24,"), encoding="utf-8")
            page.wait_for_function("document.querySelector('#diagram').textContent.includes('24×16×16')",
                                   timeout=60_000)
            spec.write_text(SPEC.replace("global_avgpool", "bogus"), encoding="utf-8")
            page.wait_for_selector("#errors .error", timeout=60_000)
            assert ":9:" in page.inner_text("#errors") and "bogus" in page.inner_text("#errors")
            assert page.get_attribute("#diagram", "class") == "stale"
            spec.write_text(SPEC, encoding="utf-8")
            page.wait_for_function("!document.querySelector('#errors .error') && "
                                   "document.querySelector('#diagram').textContent.includes('8×16×16')",
                                   timeout=60_000)
        finally:
            browser.close()
