"""The committed run's plots as pictures for README and docs/, and a page that works offline.

`dvc plots show` draws dvc.yaml's plots into a page that loads Vega from a CDN: blank
behind a firewall, and of no use in Markdown. This takes the same filled-in Vega-Lite specs
(`dvc plots show --json`) and renders them with vl-convert, which needs no browser and no
network:

    python -m tools.figures              docs/img/*.png and docs/img/figures.json
    python -m tools.figures --compare REV...
                                          docs/img/rows-compared.png: the accuracy after
                                          each row of several revisions or experiments
    python -m tools.figures --diff REV --out DIR
                                          DIR/*.png: every plot `dvc plots diff REV` draws,
                                          REV and the workspace overlaid (CI's pictures
                                          of a change), and the Markdown listing them
    python -m tools.figures --offline F  an HTML template with Vega bundled, for
                                          `dvc plots show --html-template F`

figures.json records, for each picture, the dvc.lock hash of the output it was drawn from
and the picture's own SHA-256, so a test can tell when the pictures no longer show the
committed run. Not a pipeline stage: it reads results and writes documentation only.
"""

import argparse
import hashlib
import json
import re
from pathlib import Path

import yaml

from rowlstm.atomic import staged_file
from rowlstm.errors import UserError, cli
from tools.dvcrun import dvc_output

IMAGES = Path("docs/img")
MANIFEST = IMAGES / "figures.json"
# dvc.yaml plot name -> (picture, the pipeline output whose data it draws)
FIGURES = {
    "Training curves": ("training-curves.png", "reports/train/plots"),
    "Accuracy per epoch": ("accuracy.png", "reports/train/plots"),
    "Mistakes": ("mistakes.png", "reports/predictions.csv"),
    "reports/rows.csv": ("rows.png", "reports/rows.csv"),
    "reports/classes.csv": ("errors-per-digit.png", "reports/classes.csv"),
}
ROWS_PLOT, COMPARED = "reports/rows.csv", "rows-compared.png"
# DVC's own page, with its CDN <script> tags replaced by the bundle.
PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <script>{bundle}</script>
    <style>table {{ border-spacing: 15px; }}</style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def shown_plots(revisions: list[str] | None = None) -> dict[str, list[dict]]:
    """Every plot of dvc.yaml, by name, as `dvc plots show --json` draws it (the workspace),
    or `dvc plots diff --json` (revisions or experiments against it, overlaid)."""
    command = ["plots", "diff", *revisions] if revisions else ["plots", "show"]
    return json.loads(dvc_output(*command, "--json"))["data"]


def plot_specs(revisions: list[str] | None = None) -> dict[str, dict]:
    """dvc.yaml's plots as the Vega-Lite specs `dvc plots show` draws (of the workspace), or
    `dvc plots diff` (of several revisions or experiments, overlaid)."""
    plots = shown_plots(revisions)
    missing = [name for name in FIGURES if not plots.get(name)]
    if missing:
        raise UserError(f"no data for {', '.join(missing)}: run `dvc repro` or `dvc pull` first")
    return {name: plots[name][0]["content"] for name in FIGURES}


def locked_hashes(lock: str) -> dict[str, str]:
    """Every stage output's hash as a dvc.lock's text records it, by path."""
    stages = yaml.safe_load(lock)["stages"]
    return {out["path"]: out["md5"] for stage in stages.values() for out in stage.get("outs", [])}


def render(specs: dict[str, dict], folder: Path) -> dict[str, dict[str, str]]:
    """Write each picture into folder; return the manifest entries."""
    import vl_convert

    hashes = locked_hashes(Path("dvc.lock").read_text())
    manifest = {}
    for name, (picture, source) in FIGURES.items():
        png = vl_convert.vegalite_to_png(specs[name], scale=1)
        with staged_file(folder / picture) as path:
            path.write_bytes(png)
        manifest[picture] = {
            "plot": name,
            "source": source,
            "source_md5": hashes[source],
            "sha256": hashlib.sha256(png).hexdigest(),
        }
    return manifest


def render_diff(rev: str, folder: Path) -> list[str]:
    """Every Vega plot of `dvc plots diff REV` as folder/NAME.png; the pictures' names."""
    import vl_convert

    pictures = []
    for name, plots in shown_plots([rev]).items():
        for plot in plots:
            if plot.get("type") == "vega":
                picture = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() + ".png"
                with staged_file(folder / picture) as path:
                    path.write_bytes(vl_convert.vegalite_to_png(plot["content"], scale=1))
                pictures.append(picture)
    return pictures


def diff_markdown(rev: str, pictures: list[str], folder: Path) -> str:
    """The job summary's section listing the pictures of a change."""
    listed = "".join(f"- {picture}\n" for picture in pictures)
    return (
        f"## Plots: workspace against {rev}\n\n"
        f"`dvc plots diff {rev}`, both overlaid, in {folder}/:\n\n{listed}"
    )


def offline_template() -> str:
    """DVC's HTML page with Vega, Vega-Lite and Vega-Embed inlined instead of fetched."""
    import vl_convert

    return PAGE.format(bundle=vl_convert.javascript_bundle())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--offline", type=Path, metavar="FILE", help="write the offline HTML template instead"
    )
    parser.add_argument(
        "--compare", nargs="+", metavar="REV", help="overlay these revisions' rows plots"
    )
    parser.add_argument("--diff", metavar="REV", help="draw REV against the workspace")
    parser.add_argument("--out", type=Path, default=Path("dvc_plots/diff"), help="for --diff")
    args = parser.parse_args()
    if args.diff:
        print(diff_markdown(args.diff, render_diff(args.diff, args.out), args.out))
        return
    if args.compare:
        import vl_convert

        spec = plot_specs(args.compare)[ROWS_PLOT]
        with staged_file(IMAGES / COMPARED) as path:
            path.write_bytes(vl_convert.vegalite_to_png(spec, scale=1))
        print(IMAGES / COMPARED)
        return
    if args.offline:
        with staged_file(args.offline) as path:
            path.write_text(offline_template())
        return
    manifest = render(plot_specs(), IMAGES)
    with staged_file(MANIFEST) as path:
        path.write_text(json.dumps(manifest, indent=2) + "\n")
    for picture in manifest:
        print(IMAGES / picture)


if __name__ == "__main__":
    cli(main)
