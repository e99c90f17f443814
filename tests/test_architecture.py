"""The dependency rule, checked over the source: an app imports only apps below it, no cycles.

Layers, lowest first (docs/architecture.md): engramia_site's request plumbing is the floor;
then tenants; jobs and conversations; the shared retrieval layer; memory; skills; the
assistants toolkit; the `engramia` SDK package and, beside it, the `engramia_mcp` server (the two
do not import each other); the admin console. engramia_site's wiring (settings, urls, wsgi,
asgi) sits on top and may import anything. Imports inside functions count too: a lazy import is
still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS: list[set[str]] = [
    {"engramia_site"},
    {"tenants"},
    {"jobs", "conversations"},
    {"retrieval"},
    {"memory"},
    {"skills"},
    {"assistants"},
    {"engramia", "engramia_mcp"},
    {"console"},
    {"wiring"},
]
RANK = {app: rank for rank, apps in enumerate(LAYERS) for app in apps}
# engramia_site modules that wire the whole site together rather than serve as the floor.
WIRING = {"settings", "settings_test", "urls", "wsgi", "asgi"}


def _app_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "engramia_site" and len(parts) > 1 and parts[1] in WIRING:
        return "wiring"
    return parts[0] if parts[0] in RANK else None


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _source_files() -> list[Path]:
    files = []
    for package in RANK:
        if package == "wiring":
            continue
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                files.append(path)
    return sorted(files)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b` may import the submodule a.b: record both candidates.
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        guarded = _under_type_checking(tree, node)
        for name in names:
            found.append((name, node.lineno, id(node) in top_level and not guarded))
    return found


def _under_type_checking(tree: ast.Module, target: ast.AST) -> bool:
    for node in tree.body:
        guard = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        if guard and any(child is target for child in ast.walk(node)):
            return True
    return False


def upward_imports() -> list[str]:
    """Every import of an app at its own rank or above (other than itself)."""
    problems = []
    for path in _source_files():
        importer = _app_of(_module_name(path))
        assert importer is not None
        reported: set[tuple[int, str]] = set()
        for name, line, _ in _imports(path):
            imported = _app_of(name)
            if imported is None or imported == importer or (line, imported) in reported:
                continue
            if RANK[imported] >= RANK[importer]:
                reported.add((line, imported))
                where = f"{path.relative_to(ROOT)}:{line}"
                problems.append(f"{where} {importer} imports {imported} ({name})")
    return sorted(problems)


def module_cycles() -> list[list[str]]:
    """Cycles among modules through module-level imports (Tarjan's strongly connected parts)."""
    modules = {_module_name(path): path for path in _source_files()}
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for name, _, at_top in _imports(path):
            if at_top and name in modules and name != module:
                graph[module].add(name)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                cycles.append(sorted(part))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_app_imports_one_above_it() -> None:
    assert upward_imports() == []


def test_no_import_cycles_between_modules() -> None:
    assert module_cycles() == []


def test_the_checker_sees_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule can fail: a tenants module importing memory is reported."""
    fake_root = tmp_path
    (fake_root / "tenants").mkdir()
    (fake_root / "memory").mkdir()
    (fake_root / "tenants" / "__init__.py").write_text("")
    (fake_root / "memory" / "__init__.py").write_text("")
    (fake_root / "tenants" / "bad.py").write_text("def f():\n    from memory.models import X\n")
    (fake_root / "memory" / "a.py").write_text("import memory.b\n")
    (fake_root / "memory" / "b.py").write_text("from memory import a\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", fake_root)
    assert upward_imports() == ["tenants/bad.py:2 tenants imports memory (memory.models)"]
    assert module_cycles() == [["memory.a", "memory.b"]]
