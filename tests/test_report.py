"""`frx report RUN`: one self-contained HTML page; headless Chromium renders every figure in it."""

import base64
import io
import json
import re

import pytest
from PIL import Image

from frx import report
from frx.cli import cmd_report
from tests.support.browser import find_or_install_chromium, rendered_images
from tests.support.run_folders import make_run
from tests.support.trained_run import trained_run

FIGURES = ["loss", "lr", "accuracy", "augmentation preview"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    run, _ = trained_run(tmp_path_factory)
    out = tmp_path_factory.mktemp("report") / "r.html"
    assert cmd_report([str(run), "--out", str(out)]) == 0
    return out.read_text()


def embedded_sizes(page_html: str) -> dict[str, tuple[int, int]]:
    sizes = {}
    for alt, data in re.findall(r'<img class="[^"]*" alt="([^"]*)" src="data:image/png;base64,([^"]+)"', page_html):
        sizes[alt] = Image.open(io.BytesIO(base64.b64decode(data))).size
    return sizes


def test_the_report_is_one_file_with_every_section(page, tmp_path_factory):
    run, _ = trained_run(tmp_path_factory)
    assert not re.search(r"<script|<link|src=\"(?!data:)|url\(", page)  # loads nothing, runs nothing
    assert list(embedded_sizes(page)) == FIGURES
    for heading in ("Final metrics", "Curves", "Evaluations", "Faults and skips", "Augmentation preview",
                    "Configuration", "System", "Checkpoints"):
        assert f"<h2>{heading}</h2>" in page
    info = json.loads((run / "run_info.json").read_text())
    assert info["git_hash"] in page and f"<td>{info['platform']}</td>" in page
    assert "<td>optim.lr</td>" in page and "No non-finite steps, no skipped or converted records." in page
    evaluations = page.split("<h2>Evaluations</h2>")[1].split("<h2>")[0]
    assert [int(s) for s in re.findall(r'<tr><td class="num">(\d+)</td>', evaluations)] == [0, 3, 6]
    assert "<p>3, 6</p>" in page  # checkpoints


def test_chromium_renders_every_figure(page):
    chromium = find_or_install_chromium()
    sizes = embedded_sizes(page)
    broken = page.replace("</body>", '<img alt="broken on purpose" src="data:image/png;base64,AAAA"></body>')
    images = rendered_images(chromium, broken)
    assert [alt for alt, *_ in images] == FIGURES + ["broken on purpose"]
    for alt, complete, width, height in images[:-1]:
        assert complete and (width, height) == sizes[alt], alt
    assert images[-1][2] == 0  # the probe does tell a broken image from a rendered one


def test_faults_and_a_failure_are_reported(tmp_path):
    folder = make_run(tmp_path, "bad", status={"status": "failed", "error": "NonFiniteError: step 3 produced a non-finite loss"})
    with open(folder / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 2, "train/nonfinite_steps": 0, "data/skipped": 2, "data/skipped/undecodable": 2}) + "\n")
        f.write(json.dumps({"step": 3, "train/nonfinite_steps": 1, "data/skipped": 3, "data/skipped/undecodable": 3}) + "\n")
    text = open(report.write(str(folder), preview=False)).read()
    faults = text.split("<h2>Faults and skips</h2>")[1].split("<h2>")[0]
    assert "The run failed: NonFiniteError: step 3 produced a non-finite loss" in faults
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td>(?:<td class=\"num\">(\d+)</td>|<td></td>)", faults)
    assert rows == [("data/skipped", "3", "2"), ("data/skipped/undecodable", "3", "2"), ("train/nonfinite_steps", "1", "3")]
    assert "Left out (--no-preview)." in text


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json; is it a run folder written by `frx train`?"):
        report.write(str(tmp_path))
