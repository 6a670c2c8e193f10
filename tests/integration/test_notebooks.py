"""The example notebooks run top to bottom, tell their story in prose and plots, and are
committed without outputs.

Each notebook is executed once per module, in a kernel started from this interpreter (the
``python3`` kernel spec's ``python`` is replaced by ``sys.executable``), on its small seeded
universe. The notebooks end with a cell that checks their own conclusions, so a change to the
engine that changes the story fails here as an error output.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import NotebookNode

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "examples" / "notebooks"
NOTEBOOKS = [
    "01_volatility_scaled_stops.ipynb",
    "02_regime_dependent_rules.ipynb",
    "03_enhanced_slippage.ipynb",
    "04_pandas_to_tearsheet.ipynb",
]
PLOTLY_MIME = "application/vnd.plotly.v1+json"
# Generous: a fresh machine compiles the numba kernels in the first cell that runs a backtest.
CELL_TIMEOUT_S = 600
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
KERNEL_PREFIX_MARK = "kernel sys.prefix="


def read(name: str) -> NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def code_cells(notebook: NotebookNode) -> list[NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def outputs(notebook: NotebookNode) -> list[NotebookNode]:
    return [output for cell in code_cells(notebook) for output in cell.outputs]


@pytest.fixture(scope="module", params=NOTEBOOKS)
def executed(request: pytest.FixtureRequest) -> NotebookNode:
    """The notebook after running every cell; errors are kept as outputs, not raised."""
    notebook = read(request.param)
    # One cell more, run last: which interpreter the kernel really is.
    probe = f"import sys\nprint('{KERNEL_PREFIX_MARK}' + sys.prefix)"
    notebook.cells.append(nbformat.v4.new_code_cell(probe))
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        allow_errors=True,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()
    return notebook


def test_every_notebook_in_the_folder_is_tested():
    assert sorted(path.name for path in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name):
    notebook = read(name)
    nbformat.validate(notebook)
    with_outputs = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert with_outputs == [], f"{name}: clear the outputs of cells {with_outputs}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_tells_a_story_in_markdown(name):
    notebook = read(name)
    markdown = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# ")
    assert len(markdown) >= 5
    assert any("## Conclusion" in source for source in markdown)


def test_notebook_runs_in_this_interpreter(executed):
    printed = "".join(output.text for output in outputs(executed) if output.output_type == "stream")
    assert f"{KERNEL_PREFIX_MARK}{sys.prefix}" in printed


def test_notebook_runs_without_errors(executed):
    errors = [
        f"cell {index}: {output.ename}: {output.evalue}\n"
        + ANSI_ESCAPE.sub("", "\n".join(output.traceback))
        for index, cell in enumerate(executed.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert errors == [], "\n\n".join(errors)


def test_notebook_shows_plotly_figures(executed):
    figures = [output for output in outputs(executed) if PLOTLY_MIME in output.get("data", {})]
    assert len(figures) >= 3
    for figure in figures:
        assert figure["data"][PLOTLY_MIME]["data"], "a figure without traces"


def test_notebook_confirms_its_conclusions(executed):
    last_story_cell = code_cells(executed)[-2]  # the probe cell comes after it
    printed = "".join(output.get("text", "") for output in last_story_cell.outputs)
    assert "The conclusions hold for this run." in printed
