"""The package's shape: imports name files that exist, no import cycles, every module in a layer.

``lint-imports`` (contracts in pyproject.toml) checks the direction of the layers; these
tests check what its contracts cannot say by themselves.
"""
from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "hopper"


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _hopper_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every ``hopper`` module one file imports: the names of
    ``import hopper.x.y`` and the ``hopper.x`` of ``from hopper.x import y``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "hopper"]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: a relative import; write hopper.x.y")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "hopper":
            found.append((node.lineno, node.module))
    return found


def _is_module(dotted: str) -> bool:
    base = REPO.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_every_hopper_import_names_a_module_file_at_its_dotted_path():
    sources = _sources()
    assert len(sources) > 50, "the package's sources were not found"
    imports = [(path, line, name) for path in sources for line, name in _hopper_imports(path)]
    assert len(imports) > 200, "the walk found too few imports to be reading the sources"
    missing = [f"{path.relative_to(REPO)}:{line}: {name}" for path, line, name in imports
               if not _is_module(name)]
    assert not missing, "imports with no file at their path:\n" + "\n".join(missing)


def test_a_missing_module_is_reported_by_the_import_walk(tmp_path):
    source = tmp_path / "user.py"
    source.write_text("from hopper.app.no_such_module import thing\nimport hopper.app.queue\n")
    names = [name for _, name in _hopper_imports(source)]
    assert names == ["hopper.app.no_such_module", "hopper.app.queue"]
    assert not _is_module("hopper.app.no_such_module") and _is_module("hopper.app.queue")


def _import_graph() -> grimp.ImportGraph:
    sys.path.insert(0, str(REPO))  # the checkout, not an installed copy
    try:
        # As lint-imports reads it (pyproject.toml): type-checking-only imports never run.
        return grimp.build_graph("hopper", cache_dir=None, exclude_type_checking_imports=True)
    finally:
        sys.path.remove(str(REPO))


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(
                        child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_module_imports_itself_back_through_others():
    graph = _import_graph()
    assert "hopper.app.backends.sql" in graph.modules
    assert _cycles(graph) == []


def test_the_cycle_finder_reports_a_cycle_hidden_in_a_function():
    graph = _import_graph()
    graph.add_import(importer="hopper.app.backends.base", imported="hopper.app.queue")
    assert any({"hopper.app.backends.base", "hopper.app.queue"} <= set(group)
               for group in _cycles(graph))


def _layered_modules() -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    names: set[str] = set()
    for contract in config["contracts"]:
        if contract["type"] == "layers":
            for layer in contract["layers"]:
                names |= {n.strip() for n in layer.replace("|", ":").split(":")}
    return names


def test_every_module_of_the_app_package_sits_in_a_layer():
    # The media library is a plugin beside the web layer: its own contracts cover it.
    children = {_module_name(p) for p in (REPO / "hopper" / "app").iterdir()
                if (p.suffix == ".py" and p.name != "__init__.py")
                or (p / "__init__.py").is_file()}
    unlayered = children - _layered_modules() - {"hopper.app.library"}
    assert not unlayered, f"add these to a layer in pyproject.toml: {sorted(unlayered)}"
