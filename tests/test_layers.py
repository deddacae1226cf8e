"""The package's layers: every import goes down, no modules import each other in a circle, engines stay behind their boundary.

Read from the source with ``ast`` (imports inside functions count too), so the
contract holds for lazy imports as well. The layers are listed in
``bpfnb/__init__.py``'s docstring; a package may import from its own layer's
package and from any package of a lower layer, never from a sibling of its
own layer or from above.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bpfnb"

#: Top to bottom. Packages on one line are siblings and may not import each other.
LAYERS: list[set[str]] = [
    {"notebook"},
    {"tools", "capture"},
    {"remote"},
    {"program"},
    {"maps", "streams", "packets"},
    {"live"},
    {"plot", "engines"},
    {"decode"},
    {"kernel"},
    {"display", "errors", "cache"},
]


def _layer_of(part: str) -> int:
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(f"bpfnb.{part} is in no layer: add it to LAYERS and to bpfnb/__init__.py's docstring")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every bpfnb module ``path`` imports, resolved to absolute names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bpfnb"):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("bpfnb"):
                continue
            for alias in node.names:
                # "from . import x" and "from .pkg import module" name modules too.
                candidate = f"{target}.{alias.name}"
                yield node.lineno, candidate if _is_module(candidate) else target


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path: Path) -> None:
    own = _module_name(path).split(".")[1]
    for line, target in _imports(path):
        assert _is_module(target), f"{path.relative_to(PACKAGE)}:{line} imports {target}, which does not exist"
        parts = target.split(".")
        if len(parts) < 2 or parts[1] == own:
            continue
        assert _layer_of(parts[1]) > _layer_of(own), (
            f"{path.relative_to(PACKAGE)}:{line} imports {target}: bpfnb.{own} may not import "
            f"bpfnb.{parts[1]}, which is {'beside' if _layer_of(parts[1]) == _layer_of(own) else 'above'} it"
        )


#: The engines behind the boundary (bpfnb/engines/base.py), each a package of bpfnb.engines.
ENGINES = {"bcc", "libbpf", "bpftrace"}
#: The layers that speak an engine's own language (its completion, its flags, its helper verdicts),
#: and may name it; everything else reaches an engine through the boundary.
SPEAKS_ENGINES = {"notebook", "tools"}


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_engines_are_reached_through_their_boundary(path: Path) -> None:
    parts = _module_name(path).split(".")
    own_engine = parts[2] if parts[1:2] == ["engines"] and len(parts) > 2 and parts[2] in ENGINES else None
    for line, target in _imports(path):
        names = target.split(".")
        if names[1:2] != ["engines"] or len(names) < 3 or names[2] not in ENGINES or names[2] == own_engine:
            continue
        # bpfnb/engines/__init__.py's load() picks the engine: it alone names them all.
        if parts == ["bpfnb", "engines"]:
            continue
        assert own_engine is None, f"{path.relative_to(PACKAGE)}:{line} imports {target}: one engine may not use another"
        assert parts[1] in SPEAKS_ENGINES, (
            f"{path.relative_to(PACKAGE)}:{line} imports {target}: bpfnb.{parts[1]} reaches engines through "
            "bpfnb.engines (base.py's LoadedProgram and load()), not one engine's modules"
        )


def test_no_import_cycles() -> None:
    graph = {_module_name(path): {t for _, t in _imports(path) if _is_module(t)} for path in _sources()}
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            cycle = trail[trail.index(module) :] + [module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, trail + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_every_package_has_a_layer() -> None:
    for path in PACKAGE.iterdir():
        if path.name.startswith(("_", ".")) or path.name in ("py.typed", "labextension"):
            continue
        _layer_of(path.stem)
