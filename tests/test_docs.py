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

"The committed run" is reports/ and dvc.lock as HEAD has them, not as the workspace does:
`make repro` on another CPU, or an applied `dvc exp run`, rewrites the workspace's run and
must not fail `make test`. Each check passes when the pages agree with HEAD's run or, for a
run and its docs updated together and not yet committed, with the workspace's. In CI the
two are one, so there the check is exact.
"""

import ast
import contextlib
import hashlib
import io
import json
import re
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e import sh
from tests.helpers import ROOT
from tools.figures import FIGURES, MANIFEST, locked_hashes, offline_template, plot_specs, render

REGION = re.compile(
    r'<!-- committed-run(?: (row|column)="([^"]+)")? -->\n(.*?)<!-- /committed-run -->', re.S
)
NUMBER = re.compile(r"(?<![\w.\-/@#])\d[\d,]*(?:\.\d+)?%?")
SCREENSHOT = MANIFEST.parent / "drawing-page.json"  # make screenshot's record of its picture
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# A run's file by its path in the repository, as text.
Read = Callable[[str], str]
# One check of the pages against one run: its problems, none when they agree.
Check = Callable[[Path, Read], list[str]]


def pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def runs(root: Path) -> dict[str, Read]:
    """The runs the pages may describe: HEAD's (when root is a git checkout with a commit),
    then the workspace's."""
    found: dict[str, Read] = {}
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True)
    if head.returncode == 0:
        found["HEAD"] = lambda path: (
            subprocess.run(
                ["git", "show", f"HEAD:{path}"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    found["the workspace"] = lambda path: (root / path).read_text()
    return found


def agrees_with_a_run(root: Path, check: Check) -> None:
    """Fail, listing each run's problems, unless the pages agree with one of the runs."""
    problems = {}
    for name, read in runs(root).items():
        try:
            problems[name] = check(root, read)
        except (OSError, subprocess.CalledProcessError) as error:  # a file the run lacks
            problems[name] = [f"cannot read it: {error}"]
        if not problems[name]:
            return
    pytest.fail("\n".join(f"against {name}'s run: {p}" for name, p in problems.items()))


def committed(read: Read) -> dict[str, float]:
    """A run's figures: reports/metrics.json, reports/train.json, DVCLive's last epoch, the
    size of the test split they imply, and the rows after which reports/rows.csv passes 50%,
    90% and 99% accuracy."""
    test = json.loads(read("reports/metrics.json"))["test"]
    training = json.loads(read("reports/train.json"))["training"]
    live = json.loads(read("reports/train/metrics.json"))
    figures = {f"test.{key}": value for key, value in test.items()}
    figures |= {f"training.{key}": value for key, value in training.items()}
    figures |= {
        f"{split}.{key}": live[split][key] for split in ("train", "eval") for key in live[split]
    }
    figures["test.size"] = round(test["errors"] / (1 - test["accuracy"]))
    rows = pd.read_csv(io.StringIO(read("reports/rows.csv")))
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


def regions(root: Path) -> list[tuple[str, str, str]]:
    found = []
    for page in pages(root):
        for selector, label, body in REGION.findall(page.read_text()):
            found.append((page.name, label, selected(selector or None, label, body)))
    return found


def wrong_figures(root: Path, read: Read) -> list[str]:
    """Numbers in a committed-run region that are not the run's."""
    figures = committed(read)
    problems = []
    for page, label, text in regions(root) or [("pages", "any", "")]:
        numbers = NUMBER.findall(text)
        wrong = [number for number in numbers if not states(number, figures)]
        if not numbers or wrong:
            problems.append(f"{page}: region {label!r} states {wrong or 'no number'}")
    return problems


def stray_figures(root: Path, read: Read) -> list[str]:
    """The run's headline figures outside a region: typed by hand, they would go stale
    unnoticed with the next run."""
    figures = committed(read)
    written = {f"{figures['test.accuracy']:.2%}", str(figures["test.accuracy"])}
    written |= {f"{figures['training.best_val_accuracy']:.2%}", f"{figures['test.loss']:.5f}"}
    written |= {str(figures["test.macro_f1"]), str(figures["training.best_val_accuracy"])}
    problems = []
    for page in pages(root):
        outside = REGION.sub("", page.read_text())
        stray = sorted(
            text for text in written if re.search(rf"(?<![\d.]){re.escape(text)}(?!\d)", outside)
        )
        if stray:
            problems.append(f"{page.name} states {stray} outside a committed-run region")
    return problems


def stale_pictures(root: Path, read: Read) -> list[str]:
    """docs/img not drawn from the outputs the run's dvc.lock records, or edited since:
    the plots (make figures) and the drawing page's screenshot (make screenshot)."""
    manifest = json.loads((root / MANIFEST).read_text())
    problems = []
    if {entry["plot"] for entry in manifest.values()} != set(FIGURES):
        problems.append(f"{MANIFEST} does not list the plots {sorted(FIGURES)}")
    screenshot = json.loads((root / SCREENSHOT).read_text())
    hashes = locked_hashes(read("dvc.lock"))
    for command, entries in [("make figures", manifest), ("make screenshot", screenshot)]:
        for picture, entry in entries.items():
            if entry["source_md5"] != hashes.get(entry["source"]):
                problems.append(f"{picture}: re-run {command}")
            data = (root / MANIFEST.parent / picture).read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                problems.append(f"{picture}: edited since {command} made it")
    return problems


CHECKS = [wrong_figures, stray_figures, stale_pictures]


@pytest.mark.parametrize("check", CHECKS)
def test_the_pages_show_the_committed_run(check: Check) -> None:
    agrees_with_a_run(ROOT, check)


def test_the_figure_check_can_fail() -> None:
    figures = {"test.accuracy": 0.9916, "test.errors": 84}
    assert states("99.16%", figures) and states("0.992", figures) and states("84", figures)
    assert not states("99.27%", figures) and not states("85", figures)
    assert not states("1", figures)  # 0.9916 rounds to 1, but a count must be a count
    table = "| run | accuracy |\n|---|---|\n| ours | 99.16% |\n| peer | 98.60% |"
    assert selected("row", "ours", table) == " 99.16% "
    assert selected("column", "accuracy", table) == " 99.16% \n 98.60% "


def another_machine_s_run(root: Path) -> None:
    """Rewrite root's workspace run as `make repro` on another CPU does: other metrics,
    another rows.csv, other output hashes in dvc.lock, another gallery picture."""
    metrics = root / "reports/metrics.json"
    test = json.loads(metrics.read_text())["test"]
    test |= {"accuracy": 0.9925, "errors": 75, "loss": 0.02399, "macro_f1": 0.99245}
    metrics.write_text(json.dumps({"test": test}, indent=2) + "\n")
    summary = {"training": {"best_val_accuracy": 0.9922, "best_epoch": 18, "epochs_run": 20}}
    (root / "reports/train.json").write_text(json.dumps(summary, indent=2) + "\n")
    live = {"train": {"accuracy": 0.99751, "loss": 0.00942}, "eval": {"accuracy": 0.9922}}
    (root / "reports/train/metrics.json").write_text(json.dumps(live | {"step": 20}) + "\n")
    rows = pd.read_csv(root / "reports/rows.csv")
    rows["accuracy"] = (rows["accuracy"] * 0.999).round(4)
    rows.to_csv(root / "reports/rows.csv", index=False)
    lock = root / "dvc.lock"
    lock.write_text(re.sub(r"md5: ([0-9a-f]{4})", r"md5: ffff", lock.read_text()))
    (root / "reports/errors.png").write_bytes(b"\x89PNG another machine's gallery")


def test_another_machine_s_run_passes_and_an_edited_figure_fails(tmp_path: Path) -> None:
    """On a copy of HEAD's pages and run, committed in a new repository."""
    if "HEAD" not in runs(ROOT):
        pytest.skip("needs this repository as a git checkout with a commit")
    root = tmp_path / "clone"
    root.mkdir()
    paths = ["README.md", "docs", "reports", "dvc.lock"]
    archive = subprocess.run(
        ["git", "archive", "HEAD", *paths], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x"], cwd=root, input=archive.stdout, check=True)
    identity = ["-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-qm", "run"]):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)
    another_machine_s_run(root)
    for check in CHECKS:
        assert check(root, runs(root)["the workspace"]), f"{check.__name__} saw no new run"
        agrees_with_a_run(root, check)
    readme = root / "README.md"
    figure = f"{committed(runs(root)['HEAD'])['test.accuracy']:.2%}"
    text = readme.read_text()
    start = text.index("<!-- committed-run")
    readme.write_text(text[:start] + text[start:].replace(figure, "99.31%", 1))
    with pytest.raises(pytest.fail.Exception, match=r"README.md: region .* \['99.31%'\]"):
        agrees_with_a_run(root, wrong_figures)


def test_pages_link_to_what_exists_and_name_no_path_of_ours() -> None:
    for page in pages(ROOT):
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
        hashes = locked_hashes(Path("dvc.lock").read_text())
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
    for page in pages(ROOT):
        for mirror in re.findall(r"MNIST_MIRROR=(\S+)", page.read_text()):
            assert mirror == "/path/to/mnist", f"{page.name}: MNIST_MIRROR={mirror}"


CITED = re.compile(r"`((?:stages|rowlstm|tools|tests|bench)[./][\w./:-]*\w)")
RUN = re.compile(r"python -m ((?:stages|rowlstm|tools|bench)\.\w+)")


def top_level_names(path: Path) -> set[str]:
    """What a module defines at its top level: functions, classes, assigned names."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


def missing(cited: str) -> bool:
    """Whether a path (stages/train.py, tests/test_x.py::test_y) or a dotted name
    (stages.train.run, tests.helpers.tiny_train) names nothing in this repository. NAME
    stands for any (stages/NAME.py)."""
    if "NAME" in cited:
        return False
    if "/" in cited:
        path, _, test = cited.partition("::")
        return not (ROOT / path).exists() or (
            bool(test) and test not in top_level_names(ROOT / path)
        )
    parts = cited.split(".")
    for split in range(len(parts), 0, -1):
        module = ROOT.joinpath(*parts[:split])
        for file in (module.with_suffix(".py"), module / "__init__.py"):
            if file.exists():
                rest = parts[split:]
                return len(rest) > 1 or (bool(rest) and rest[0] not in top_level_names(file))
    return True


def test_every_code_name_the_docs_cite_exists() -> None:
    """A renamed module, function or test leaves no page pointing at nothing."""
    assert missing("tests.helpers.BASE") and missing("stages/report.py")  # as once cited
    assert not missing("stages.train.run") and not missing("tests/test_gate.py")
    texts = {page.name: page.read_text() for page in pages(ROOT)}
    cited = {
        (name, found)
        for name, text in texts.items()
        for found in CITED.findall(text) + RUN.findall(text)
    }
    assert sorted(pair for pair in cited if missing(pair[1])) == []
