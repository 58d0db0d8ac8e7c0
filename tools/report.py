"""The metrics report CI writes into its job summary; the verdict is the base's gate.

Printed as Markdown, the same locally (`make report`) as in CI:

1. the files of the gate itself that the change edits (GATE_FILES, which
   .github/CODEOWNERS routes to review);
2. the metrics and params diffs against the base;
3. each threshold the change sets otherwise than the base: shown, never applied;
4. the verdict of the base revision's judge (tools/gates.py, from the base's tree, with the
   base's thresholds), with --reproduced also on `make verify`'s rerun: one line per
   problem.

Why each part is there, and what the judge checks: docs/guarantees.md, "The report, its
gates, and CI". Not a pipeline stage: it reads results and writes none.
"""

import argparse
from pathlib import Path
from typing import Any

import yaml

from rowlstm.errors import UserError, cli
from tools.dvcrun import dvc_markdown
from tools.gates import ask_base, committed, git

PARAMS = Path("params.yaml")
# What the gate is made of: a change to any of these is listed first, for review.
GATE_FILES = (
    "tools/gates.py",
    "tools/reproduction.py",
    "tools/lockcheck.py",
    "tools/report.py",
    "tools/quick.py",
    "tools/verify.py",
    "Makefile",
    ".github/",
    ".ci/",
)


def gate_edits(ref: str, thresholds_changed: bool) -> str:
    """The Markdown line naming the gate's files this change edits against ref ("" if none);
    params.yaml is one of them when its report section changed."""
    changed = git("diff", "--name-only", ref).stdout.split()
    edited = [path for path in changed if path.startswith(GATE_FILES)]
    if thresholds_changed:
        edited.append("params.yaml (report)")
    if not edited:
        return ""
    return (
        f"**This change edits the gate:** {', '.join(edited)}. Review them "
        "(.github/CODEOWNERS asks the gate's owners); the verdict below is the base's.\n\n"
    )


def report_section(text: str | None) -> dict[str, Any]:
    """params.yaml's report section as written ({} where there is none or it cannot be read)."""
    try:
        raw = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        return {}
    section = raw.get("report") if isinstance(raw, dict) else None
    return section if isinstance(section, dict) else {}


def review_lines(ref: str) -> list[str]:
    """One Markdown line per threshold this change adds, changes or removes against ref."""
    base = report_section(committed(ref, PARAMS))
    here = report_section(PARAMS.read_text())
    lines = []
    for key in sorted(base.keys() | here.keys()):
        old, new, name = base.get(key), here.get(key), f"report.{key}"
        if key not in base:
            lines.append(
                f"**Needs review:** {name}={new} is new in this change; {ref}'s gate "
                "does not read it until it is merged."
            )
        elif key not in here:
            lines.append(
                f"**Needs review:** this change removes {name}; the gate uses {ref}'s {old}."
            )
        elif old != new:
            lines.append(
                f"**Needs review:** this change sets {name} from {old} to {new}; "
                f"the gate uses {ref}'s {old}."
            )
    return lines


def tables(ref: str) -> str:
    """The metrics and params diffs against ref, as Markdown."""
    try:
        metrics = dvc_markdown("metrics", "diff", ref, "--all") or f"No metrics at {ref} or here."
        changed = dvc_markdown("params", "diff", ref) or "No param changed."
    except UserError as error:
        return f"The diffs cannot be shown: {error}\n\n"
    return (
        f"## Metrics: workspace against {ref}\n\n{metrics}\n\n"
        f"## Params: workspace against {ref}\n\n{changed}\n\n"
    )


def run(ref: str, reproduced: Path | None) -> list[str]:
    """Print the report; return the base's gate's failures ([] when it passed)."""
    committed(ref, PARAMS)  # first: it names an unknown ref in one line
    asked = ask_base(ref, *(["--reproduced", str(reproduced.resolve())] if reproduced else []))
    reviews = review_lines(ref)  # a line per threshold that differs: none when none does
    shown = "".join(f"{line}\n\n" for line in reviews)
    print(gate_edits(ref, bool(reviews)) + tables(ref) + shown + asked.markdown, end="")
    return asked.failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="main", help="git revision to compare with (main)")
    parser.add_argument(
        "--reproduced", type=Path, help="make verify's rerun of HEAD (.dvc/tmp/verify)"
    )
    args = parser.parse_args()
    failures = run(args.base, args.reproduced)
    if failures:
        raise UserError("\n".join(failures))


if __name__ == "__main__":
    cli(main)
