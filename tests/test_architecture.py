"""The shape docs/architecture.md promises (import-linter checks the layers themselves, in `make lint`)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "emoji_reco"


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 300}
    assert not long, f"modules holding two jobs: {long}"


def test_no_function_is_over_60_lines_and_no_line_over_110_characters():
    long_functions, long_lines = {}, []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef,
                                 ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long_functions[f"{path.relative_to(PACKAGE)}:{node.name}"] = node.end_lineno - node.lineno + 1
        long_lines += [f"{path.relative_to(PACKAGE)}:{n}" for n, line in enumerate(text.splitlines(), 1)
                       if len(line) > 110]
    assert not long_functions, f"functions doing several jobs: {long_functions}"
    assert not long_lines, f"lines over 110 characters: {long_lines[:10]} ({len(long_lines)} in all)"


def test_every_subcommand_module_is_listed_and_declares_its_arguments():
    from emoji_reco import cli

    modules = {p.stem for p in (PACKAGE / "cli").glob("*.py")} - {"__init__", "__main__"}
    assert {m.__name__.rsplit(".", 1)[1] for m in cli.SUBCOMMANDS} == modules
    assert all(callable(getattr(m, "add", None)) for m in cli.SUBCOMMANDS)


def test_every_subpackage_has_a_test_folder_of_its_name():
    tests = Path(__file__).resolve().parent
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")} - {"config"}
    assert not {name for name in packages if not (tests / name).is_dir()}
