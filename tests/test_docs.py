"""README and docs/ against the committed run: every figure they state about it, every
picture of it, every link, and the pages' own limits.

A figure about the committed run sits in a region marked in the Markdown (invisible on
GitHub), and every number in it must be one of the run's values in reports/, at the
precision written:

    <!-- committed-run -->                 every number in the region
    <!-- committed-run row="LABEL" -->     table rows whose first cell holds LABEL
    <!-- committed-run column="LABEL" -->  the table column headed LABEL
    ...
    <!-- /committed-run -->

and outside the regions none of the run's figures may appear, so none can be typed by hand
and forgotten when the run changes.
"""

import contextlib
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

import pandas as pd

from stages.figures import FIGURES, MANIFEST, locked_hashes, offline_template, plot_specs, render
from tests.e2e import sh
from tests.helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REGION = re.compile(
    r'<!-- committed-run(?: (row|column)="([^"]+)")? -->\n(.*?)<!-- /committed-run -->', re.S
)
NUMBER = re.compile(r"(?<![\w.\-/@#])\d[\d,]*(?:\.\d+)?%?")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def committed() -> dict[str, float]:
    """The committed run's figures: reports/metrics.json, reports/train.json, the size of
    the test split they imply, and the rows after which reports/rows.csv passes 50%, 90%
    and 99% accuracy."""
    test = json.loads((ROOT / "reports/metrics.json").read_text())["test"]
    training = json.loads((ROOT / "reports/train.json").read_text())["training"]
    figures = {f"test.{key}": value for key, value in test.items()}
    figures |= {f"training.{key}": value for key, value in training.items()}
    figures["test.size"] = round(test["errors"] / (1 - test["accuracy"]))
    rows = pd.read_csv(ROOT / "reports/rows.csv")
    for share in (50, 90, 99):  # the first row after which the answer is this accurate
        figures[f"rows.passes_{share}"] = int(rows.rows_read[rows.accuracy >= share / 100].iloc[0])
    return figures


def states(token: str, figures: dict[str, float]) -> bool:
    """Whether a number as written ("99.16%", "0.0263", "84", "10,000") is one of the figures,
    rounded to the places it is written with; a whole number must equal a whole figure."""
    text = token.replace(",", "")
    written = Decimal(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if "." not in text and "%" not in text:
        return any(isinstance(v, int) and v == written for v in figures.values())
    places = Decimal(1).scaleb(written.as_tuple().exponent)
    return any(Decimal(str(value)).quantize(places) == written for value in figures.values())


def selected(selector: str | None, label: str, body: str) -> str:
    """The part of a region's text that its selector names."""
    if selector is None:
        return body
    rows = [line.strip().strip("|").split("|") for line in body.splitlines() if line[:1] == "|"]
    if selector == "row":
        return "\n".join("|".join(r[1:]) for r in rows if label in r[0])
    column = [cell.strip() for cell in rows[0]].index(label)
    return "\n".join(r[column] for r in rows[2:])


def regions() -> list[tuple[str, str, str]]:
    found = []
    for page in PAGES:
        for selector, label, body in REGION.findall(page.read_text()):
            found.append((page.name, label, selected(selector or None, label, body)))
    return found


def test_every_figure_in_a_committed_run_region_is_the_committed_run_s() -> None:
    figures = committed()
    assert regions(), "no committed-run regions found"
    for page, label, text in regions():
        numbers = NUMBER.findall(text)
        assert numbers, f"{page}: the region {label!r} selects no number"
        wrong = [number for number in numbers if not states(number, figures)]
        assert not wrong, f"{page}: {wrong} in a committed-run region are not in reports/"


def test_the_committed_run_s_figures_appear_nowhere_else() -> None:
    """A figure typed by hand outside a region would go stale unnoticed with the next run."""
    figures = committed()
    written = {f"{figures['test.accuracy']:.2%}", str(figures["test.accuracy"])}
    written |= {f"{figures['training.best_val_accuracy']:.2%}", f"{figures['test.loss']:.5f}"}
    written |= {str(figures["test.macro_f1"]), str(figures["training.best_val_accuracy"])}
    for page in PAGES:
        outside = REGION.sub("", page.read_text())
        stray = sorted(
            text for text in written if re.search(rf"(?<![\d.]){re.escape(text)}(?!\d)", outside)
        )
        assert not stray, f"{page.name} states {stray} outside a committed-run region"


def test_the_figure_check_can_fail() -> None:
    figures = {"test.accuracy": 0.9916, "test.errors": 84}
    assert states("99.16%", figures) and states("0.992", figures) and states("84", figures)
    assert not states("99.27%", figures) and not states("85", figures)
    assert not states("1", figures)  # 0.9916 rounds to 1, but a count must be a count
    table = "| run | accuracy |\n|---|---|\n| ours | 99.16% |\n| peer | 98.60% |"
    assert selected("row", "ours", table) == " 99.16% "
    assert selected("column", "accuracy", table) == " 99.16% \n 98.60% "


def test_the_pictures_show_the_committed_run() -> None:
    """docs/img was rendered from the outputs dvc.lock records, and not edited since."""
    manifest = json.loads((ROOT / MANIFEST).read_text())
    hashes = locked_hashes(ROOT / "dvc.lock")
    assert {entry["plot"] for entry in manifest.values()} == set(FIGURES)
    for picture, entry in manifest.items():
        assert entry["source_md5"] == hashes[entry["source"]], f"{picture}: re-run make figures"
        data = (ROOT / MANIFEST.parent / picture).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], picture


def test_pages_link_to_what_exists_and_name_no_path_of_ours() -> None:
    for page in PAGES:
        text = page.read_text()
        for target in LINK.findall(text):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to {target}"
        assert "../shared" not in text and "/work/" not in text, page.name


def test_readme_is_a_five_minute_read() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_figures_render_a_reproduced_run_and_the_page_works_offline(
    repo: Path, tmp_path: Path
) -> None:
    """On the tiny e2e run: the pictures are PNGs of its outputs (the custom mistakes
    template included), and the offline page DVC writes loads nothing from the network."""
    with contextlib.chdir(repo):
        manifest = render(plot_specs(), tmp_path)
        hashes = locked_hashes()
    assert {entry["source_md5"] for entry in manifest.values()} <= set(hashes.values())
    for picture in manifest:
        assert (tmp_path / picture).read_bytes()[:4] == b"\x89PNG"
    template = tmp_path / "offline.html"
    template.write_text(offline_template())
    page = tmp_path / "page"
    sh(repo, "dvc", "plots", "show", "--html-template", str(template), "-o", str(page))
    html = (page / "index.html").read_text()
    assert "vegaEmbed(" in html and "window.vegaEmbed" in html
    assert not re.search(r"<script[^>]+src=", html), "the page loads a script from elsewhere"


def test_user_commands_point_at_a_mirror_of_the_user_s() -> None:
    """Our machines keep MNIST beside the repository; a user's is somewhere of their own."""
    for page in PAGES:
        for mirror in re.findall(r"MNIST_MIRROR=(\S+)", page.read_text()):
            assert mirror == "/path/to/mnist", f"{page.name}: MNIST_MIRROR={mirror}"
