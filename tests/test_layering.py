"""The package's import rules, read from its source with ``ast`` (mypy checks none of them).

- No import cycle between modules, counting imports under ``if TYPE_CHECKING:`` and inside
  functions: a cycle there is still two modules that cannot be read one without the other.
- No module uses another module's private members: ``x._name`` where ``x`` is not
  ``self``/``cls`` and ``_name`` belongs to another module of the package, or
  ``from m import _name`` (dunders excepted; the tests may use private hooks).
- Arrows point down only: each layer imports its own layer or the layers below it, in the
  order of the layer table in ``docs/architecture.md`` (parsed here, so the two cannot drift).
- ``protocol/`` is sans-I/O: no event loops, threads, sockets or network clients.
- Every module's first docstring line names its layer, and the doc names every module.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rt_notebook"
DOC = ROOT / "docs" / "architecture.md"

# Before the layer packages, modules sat flat at the package root: the package each belongs
# to (the re-layout moves it there). A root module in neither this table nor the doc's is
# in no layer, and the layer test says so.
FLAT_LAYOUT = {
    "session": "client",
    "_driver": "client",
    "_ioloop": "client",
    "_items": "client",
    "_reading": "client",
    "_registry": "client",
    "_voice_io": "client",
    "bridge": "client",
    "responses": "client",
    "transport": "client",
    "recording": "client",
    "models": "client",
    "pricing": "client",
    "audio": "client",
    "images": "client",
    "voice_switch": "client",
    "magics": "frontends",
    "magic_args": "frontends",
    "anchors": "frontends",
    "cell_errors": "frontends",
    "last_error": "frontends",
    "chat": "frontends",
    "chat_voice": "frontends",
    "voice_control": "frontends",
    "_warmup": "frontends",
    "figures": "frontends",
    "transcript": "frontends",
    "code_blocks": "render",
    "playing": "render",
    "notebook_tools": "tools",
    "mcp_servers": "tools",
}

# What a sans-I/O module must not import (the module or any submodule). The SDK's types are
# data (pydantic models the settings checks validate against); its clients are I/O.
IO_MODULES = (
    "asyncio",
    "concurrent",
    "http.client",
    "http.server",
    "httpx",
    "openai",
    "select",
    "selectors",
    "socket",
    "ssl",
    "subprocess",
    "threading",
    "urllib.request",
    "websockets",
)
IO_ALLOWED = ("openai.types",)


@dataclass
class Module:
    name: str  # rt_notebook.x.y
    path: Path
    is_package: bool
    tree: ast.Module
    imports: dict[str, int] = field(default_factory=dict)  # internal module -> first line

    @property
    def rel(self) -> str:
        """The path the doc names it by: ``client/session.py``."""
        return self.path.relative_to(PACKAGE).as_posix()

    @property
    def package(self) -> list[str]:
        parts = self.name.split(".")
        return parts if self.is_package else parts[:-1]


@cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found[name] = Module(name, path, is_package, tree)
    for module in found.values():
        module.imports = internal_imports(module, found)
    return found


def absolute(module: Module, level: int, target: str | None) -> str:
    if not level:
        return target or ""
    base = module.package[: len(module.package) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def internal_imports(module: Module, known: dict[str, Module]) -> dict[str, int]:
    """Every module of the package ``module`` imports, wherever the import statement is."""
    found: dict[str, int] = {}
    for node in ast.walk(module.tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = absolute(module, node.level, node.module)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.append(submodule if submodule in known else source)
        for target in targets:
            if target in known and target != module.name:
                found.setdefault(target, node.lineno)
    return found


# (a) no import cycle ---------------------------------------------------------------------


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_three_modules() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_even_counting_type_only_and_function_imports() -> None:
    graph = {name: set(module.imports) for name, module in modules().items()}
    found = cycles(graph)
    assert found == [], "import cycles (each a set of modules that import each other):\n" + (
        "\n".join(" ".join(c) for c in found)
    )


# (b) no other module's private members ----------------------------------------------------


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def defined_names(tree: ast.Module) -> set[str]:
    """Every name a module defines: functions, classes, arguments, assigned names, its
    objects' attributes (``self._x = ...``) and names it imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store | ast.Del)
            and isinstance(node.value, ast.Name)
            and node.value.id in {"self", "cls"}
        ):
            names.add(node.attr)  # its own objects' attributes, not a patch of someone else's
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
    return names


def private_uses(module: Module, everywhere: dict[str, set[str]]) -> list[str]:
    """Private members of other modules ``module`` uses, as ``path:line: what``."""
    own = defined_names(module.tree)
    others = set().union(*(names for name, names in everywhere.items() if name != module.name))
    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            receiver = node.value
            if isinstance(receiver, ast.Name) and receiver.id in {"self", "cls"}:
                continue
            # Someone else's private (a third party's is not this rule's business).
            if node.attr not in own and node.attr in others:
                found.append(f"{module.rel}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            source = absolute(module, node.level, node.module)
            if not (source == "rt_notebook" or source.startswith("rt_notebook.")):
                continue
            for alias in node.names:
                if not is_private(alias.name):
                    continue
                submodule = modules().get(f"{source}.{alias.name}")
                if submodule is not None and module.package[:2] == submodule.package[:2]:
                    continue  # a package's own private module, used inside the package
                found.append(f"{module.rel}:{node.lineno}: from {source} import {alias.name}")
    return sorted(found, key=_by_place)


def _by_place(entry: str) -> tuple[str, int]:
    """``path:line: ...`` in file order, then line order."""
    match = re.match(r"([^:]+):(\d+)", entry)
    assert match is not None, entry
    return match[1], int(match[2])


def test_the_private_member_check_sees_another_modules_private() -> None:
    owner = ast.parse("class A:\n    def __init__(self):\n        self._state = 1\n")
    user_source = "def f(a):\n    return a._state, self_like._other, a.__dict__\n"
    user = Module("rt_notebook.user", PACKAGE / "user.py", False, ast.parse(user_source))
    everywhere = {"rt_notebook.owner": defined_names(owner), "rt_notebook.user": set()}
    assert private_uses(user, everywhere) == ["user.py:2: a._state"]


def test_no_module_uses_another_modules_private_members() -> None:
    everywhere = {name: defined_names(module.tree) for name, module in modules().items()}
    found = [use for module in modules().values() for use in private_uses(module, everywhere)]
    assert found == [], f"{len(found)} uses of another module's private members:\n" + "\n".join(
        found
    )


# (c) arrows point down -------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    name: str
    rank: int  # 0 is the top
    where: tuple[str, ...]  # `client/` (a package) or `errors.py` (a module at the root)


@cache
def layers() -> tuple[Layer, ...]:
    """The layer table of docs/architecture.md: ``| layer | where | job |``, top first."""
    rows: list[Layer] = []
    in_table = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            if in_table:
                break
            continue
        if cells[:2] == ["layer", "where"]:
            in_table = True
            continue
        if in_table and not set(cells[0]) <= set("-: "):
            where = tuple(re.findall(r"`([^`]+)`", cells[1]))
            rows.append(Layer(cells[0], len(rows), where))
    return tuple(rows)


def layer_of(module: Module) -> Layer | None:
    by_place = {place: layer for layer in layers() for place in layer.where}
    parts = module.path.relative_to(PACKAGE).parts
    if len(parts) > 1 and parts[0] + "/" in by_place:
        return by_place[parts[0] + "/"]
    if len(parts) == 1 and parts[0] in by_place:
        return by_place[parts[0]]
    package = FLAT_LAYOUT.get(parts[0].removesuffix(".py"))
    return None if package is None else by_place.get(package + "/")


def test_the_doc_has_a_layer_table_with_the_layer_packages() -> None:
    table = layers()
    assert len(table) >= 5, "docs/architecture.md has no `| layer | where | job |` table"
    places = {place for layer in table for place in layer.where}
    assert {"protocol/", "client/", "frontends/", "render/", "widgets/", "tools/"} <= places
    assert {"server/"} <= places


def test_every_module_is_in_a_layer() -> None:
    missing = [m.rel for m in modules().values() if layer_of(m) is None]
    assert missing == [], "in no layer of docs/architecture.md (place them):\n" + "\n".join(missing)


def upward_imports() -> list[str]:
    found = []
    for module in modules().values():
        mine = layer_of(module)
        for target, line in module.imports.items():
            theirs = layer_of(modules()[target])
            if mine is not None and theirs is not None and theirs.rank < mine.rank:
                found.append(
                    f"{module.rel}:{line} ({mine.name}) imports "
                    f"{modules()[target].rel} ({theirs.name})"
                )
    return sorted(found, key=_by_place)


def test_each_layer_imports_only_itself_and_the_layers_below() -> None:
    found = upward_imports()
    assert found == [], f"{len(found)} imports point up:\n" + "\n".join(found)


# (d) protocol/ is sans-I/O ---------------------------------------------------------------


def io_imports(module: Module) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
    return {
        name
        for name in imported
        if any(name == io or name.startswith(io + ".") for io in IO_MODULES)
        and not any(name == ok or name.startswith(ok + ".") for ok in IO_ALLOWED)
    }


def protocol_modules() -> list[Module]:
    return [m for m in modules().values() if m.path.relative_to(PACKAGE).parts[0] == "protocol"]


def test_the_io_check_sees_an_import_inside_a_function() -> None:
    source = "def f():\n    import asyncio\n    from openai import AsyncOpenAI\n"
    module = Module("rt_notebook.protocol.x", PACKAGE / "protocol/x.py", False, ast.parse(source))
    assert io_imports(module) == {"asyncio", "openai"}


def test_protocol_imports_no_io() -> None:
    assert len(protocol_modules()) >= 10
    found = {m.rel: sorted(io_imports(m)) for m in protocol_modules() if io_imports(m)}
    assert found == {}


# (e) the doc and the docstrings name the layers ------------------------------------------


def names_layer(first_line: str, layer: Layer) -> bool:
    """Does the line name ``layer``: its name or its package's, any case, singular or plural
    ("Front-end layer:", "Widget:", "Pure rendering:", "Sans-I/O ...")?"""
    text = first_line.lower().replace("-", " ")
    words = {layer.name, *(place.rstrip("/") for place in layer.where if place.endswith("/"))}
    stems = {word.lower().replace("-", " ").removesuffix("s") for word in words}
    return any(re.search(rf"(?<!\w){re.escape(stem)}", text) for stem in stems)


def test_each_modules_first_docstring_line_names_its_layer() -> None:
    wrong = []
    for module in modules().values():
        layer = layer_of(module)
        docstring = (ast.get_docstring(module.tree) or "").strip()
        first_line = docstring.splitlines()[0] if docstring else ""
        if layer is not None and not names_layer(first_line, layer):
            wrong.append(f"{module.rel} ({layer.name}): {first_line!r}")
    assert wrong == [], f"{len(wrong)} first docstring lines name no layer or another:\n" + (
        "\n".join(wrong)
    )


def test_the_layer_name_check_tells_a_stale_line_from_a_right_one() -> None:
    client = Layer("client", 5, ("client/",))
    front_end = Layer("front end", 1, ("frontends/",))
    assert names_layer("Client layer: the Session, one conversation.", client)
    assert names_layer("Front-end layer: the magics.", front_end)
    assert not names_layer("I/O layer: the Session, one conversation.", client)
    assert not names_layer("Front end: the chat panel.", client)


def test_the_doc_names_every_module() -> None:
    text = DOC.read_text(encoding="utf-8")
    unnamed = [
        m.rel
        for m in modules().values()
        if m.path.name != "__init__.py"
        and f"`{m.rel}`" not in text
        and f"`rt_notebook/{m.rel}`" not in text
    ]
    assert unnamed == [], f"{len(unnamed)} modules docs/architecture.md never names:\n" + (
        "\n".join(unnamed)
    )
