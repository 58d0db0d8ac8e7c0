"""The layout the folders promise (docs/contributing.md#the-layout): imports point down
only, and a library module one stage uses alone is named after that stage."""

from tests.helpers import ROOT, imported_files

STAGES = ("download", "prepare", "train", "evaluate", "explain")
LIBRARY = sorted(p.stem for p in (ROOT / "rowlstm").glob("*.py") if p.stem != "__init__")
TOOLS = sorted(
    f"{folder}.{p.stem}"
    for folder in ("tools", "bench")
    for p in (ROOT / folder).glob("*.py")
    if p.stem != "__init__"
)


def users(module: str, importers: list[str]) -> set[str]:
    """Which of these importers run rowlstm/module.py when imported, directly or not."""
    return {name for name in importers if f"rowlstm/{module}.py" in imported_files(name)}


def test_imports_point_down_only() -> None:
    for module in LIBRARY:
        assert not {
            f for f in imported_files(f"rowlstm.{module}") if f.startswith(("stages/", "tools/"))
        }, module
    for stage in STAGES:
        others = {f"stages/{s}.py" for s in STAGES if s != stage}
        assert not {
            f for f in imported_files(f"stages.{stage}") if f.startswith("tools/") or f in others
        }, stage
    for tool in TOOLS:
        stages = {
            f
            for f in imported_files(tool)
            if f.startswith("stages/") and not f.endswith("__init__.py")
        }
        assert stages <= ({"stages/train.py"} if tool.startswith("bench.") else set()), tool


def test_a_module_one_stage_uses_alone_is_named_after_that_stage() -> None:
    stage_users = {module: users(module, [f"stages.{s}" for s in STAGES]) for module in LIBRARY}
    for module, using in stage_users.items():
        prefix = module.split("_")[0]
        if prefix in STAGES:
            assert using == {f"stages.{prefix}"}, f"rowlstm/{module}.py is used by {using}"
        else:
            alone = len(using) == 1 and not users(module, TOOLS)
            assert not alone, f"rowlstm/{module}.py serves {using} alone: name it after it"
