"""The code itself: no import circles, ``core`` independent of ``explorer``, and pyflakes clean.

Imports are read from the source (module level and inside functions alike), so
a lazy import inside a function still counts as an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "explorer")
CHECKED = ("core", "explorer", "scripts", "tests")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, a child's import of its own package (``__init__``) included."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                    base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
                # "from pkg import sub" imports the submodule; "from pkg import Name" what pkg defines
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name)
                if target and target != module:  # a child importing its own package counts too
                    graph[module].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    names = sorted(graph)
    index = {m: i for i, m in enumerate(names)}
    rows = [index[m] for m in names for _ in graph[m]]
    cols = [index[t] for m in names for t in sorted(graph[m])]
    adjacency = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(adjacency, directed=True, connection="strong")
    groups = [[names[i] for i in np.flatnonzero(labels == k)] for k in np.unique(labels)]
    return [g for g in groups if len(g) > 1]


def test_the_circle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]
    graph["c"] = set()
    assert circles(graph) == []


def test_a_child_importing_its_own_package_is_an_edge(tmp_path):
    """The loop core/models had: the package imports a child lazily, the child imports a name from the package.
    "from pkg import child" is an edge to the child only."""
    (tmp_path / "pkg").mkdir()
    files = {
        "pkg": ("pkg/__init__.py", "def build():\n    from pkg.child import Model\n    return Model\nNAME = 1\n"),
        "pkg.child": ("pkg/child.py", "from pkg import NAME\nclass Model: pass\n"),
        "pkg.user": ("pkg/user.py", "from pkg import child\n"),
    }
    for path, text in files.values():
        (tmp_path / path).write_text(text)
    graph = import_graph({name: tmp_path / path for name, (path, _) in files.items()})
    assert graph == {"pkg": {"pkg.child"}, "pkg.child": {"pkg"}, "pkg.user": {"pkg.child"}}
    assert circles(graph) == [["pkg", "pkg.child"]]


def test_no_import_circles_and_core_never_imports_explorer():
    graph = import_graph(_modules())
    assert len(graph) > 50 and "core.data.activations" in graph["core.interpret.embed"]  # the graph was read
    assert circles(graph) == []
    assert [(m, sorted(t for t in graph[m] if t.startswith("explorer"))) for m in graph
            if m.startswith("core") and any(t.startswith("explorer") for t in graph[m])] == []


def test_pyflakes_finds_no_undefined_names_or_dead_code():
    """Undefined names (a NameError waiting on a rare path), unused imports and variables; a line marked
    ``# noqa`` is let through (an import done only to see whether a package is installed)."""
    from pyflakes.api import checkPath
    from pyflakes.reporter import Reporter

    class Collect(Reporter):
        def __init__(self):
            self.found = []

        def flake(self, message):
            self.found.append(message)

        def syntaxError(self, filename, msg, lineno, offset, text):
            self.found.append(f"{filename}:{lineno}: {msg}")

        def unexpectedError(self, filename, msg):
            self.found.append(f"{filename}: {msg}")

    reporter = Collect()
    for folder in CHECKED:
        for path in sorted((REPO / folder).rglob("*.py")):
            checkPath(str(path), reporter)
    lines = {}
    found = []
    for message in reporter.found:
        if isinstance(message, str):
            found.append(message)
            continue
        source = lines.setdefault(message.filename, Path(message.filename).read_text().splitlines())
        if "# noqa" not in source[message.lineno - 1]:
            found.append(str(message))
    assert found == []


def documented_commands() -> list[tuple[str, str]]:
    """Every ``python -m core COMMAND ...`` written in the READMEs and in core's docstrings: (where, command line).

    Continuation lines are joined; optional parts in brackets and trailing comments are dropped."""
    import re

    sources = [REPO / "README.md", REPO / "checkpoints" / "README.md", *sorted((REPO / "core").rglob("*.py"))]
    found = []
    for path in sources:
        text = path.read_text().replace("\\\n", " ")
        for match in re.finditer(r"python -m core ([a-z][a-z-]*)([^`\"'\n#]*)", text):
            line = re.sub(r"\[[^\]]*\]", "", f"{match.group(1)} {match.group(2)}")
            found.append((path.relative_to(REPO).as_posix(), " ".join(line.split())))
    return found


def test_every_documented_core_command_parses():
    """A renamed command or option leaves no stale example behind: each is parsed by the CLI's own parser, and
    a shipped checkpoint it names exists."""
    import shlex

    from core.cli import COMMANDS, build_parser

    commands = documented_commands()
    assert len(commands) > 30 and any(c.startswith("train --model") for _, c in commands)  # they were found
    wrong = []
    for where, line in commands:
        argv = shlex.split(line)
        if argv[0] not in COMMANDS:
            wrong.append(f"{where}: {line} (no such command)")
        elif any(a.startswith("-") for a in argv):  # with options (words alone may be prose: "... first")
            try:
                args = build_parser(argv[0]).parse_args(argv)
            except SystemExit:
                wrong.append(f"{where}: {line}")
                continue
            shipped = str(getattr(args, "checkpoint", None) or "")
            if shipped.startswith("checkpoints/") and not (REPO / shipped / "checkpoint.json").is_file():
                wrong.append(f"{where}: {line} (no shipped checkpoint {shipped})")
    assert wrong == []


def test_make_explore_takes_a_port():
    """`make explore PORT=...` (the README's first command) serves on that port."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "-W", "requirements.txt", "explore", "PORT=8599"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "streamlit run explorer/serve.py --server.port 8599" in out
