"""A real notebook, executed by a Jupyter kernel: summaries show as HTML tables, pictures inline."""
from __future__ import annotations

import base64

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    "import archspec\nsummary = archspec.summarize('lenet5')\nsummary",
    "picture = archspec.draw('lenet5', wrap=1)\npicture",
    "archspec.draw('lenet5', style='boxes')",
    "archspec.draw.compare(['lenet5', 'alexnet'])",
    "picture.save('lenet5.svg')",
]


@pytest.mark.slow
def test_a_notebook_shows_summaries_and_pictures_inline(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [cell.outputs for cell in notebook.cells]
    assert all(o.output_type in ("execute_result", "display_data") for cell in outputs for o in cell), outputs

    (summary,) = outputs[0]
    html = summary.data["text/html"]
    assert "<table" in html and "archspec-layers" in html and "61,706" in html  # LeNet-5's parameters
    assert "c1" in html and "6×28×28" in html

    (graph,) = outputs[1]
    assert {"image/svg+xml", "image/png", "text/plain"} <= set(graph.data)
    svg = graph.data["image/svg+xml"]
    assert svg.lstrip().startswith("<") and "<svg" in svg and "@font-face" in svg and "lenet5" in svg
    assert base64.b64decode(graph.data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"

    (boxes,) = outputs[2]
    assert "image/svg+xml" in boxes.data and "layered boxes" in boxes.data["image/svg+xml"]

    (chart,) = outputs[3]
    assert "image/svg+xml" in chart.data and "alexnet" in chart.data["image/svg+xml"]
    assert "CompareRow" in chart.data["text/plain"]  # still the rows, as a list

    assert (tmp_path / "lenet5.svg").read_text(encoding="utf-8").count("<svg") == 1
