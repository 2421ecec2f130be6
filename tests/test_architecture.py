"""The package's shape: one-way layers, no import cycles, lazy imports only where they are
meant to be, registry names that match their keys, and a fast ``genreid --help``."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "genreid"
# Bottom to top: a module may import its own layer and the ones below, never one above. A row
# is a top-level package or one sub-package of a group (``eval.ranking``).
LAYERS = (
    "core", "data", "viz", "models", "labels",
    "eval.ranking", "eval.generation", "eval.deploy",
    "engine", "reporting", "cli",
)  # fmt: skip
# Packages that only group rows: their ``__init__`` holds a docstring and imports nothing.
GROUPS = ("eval",)


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


MODULES = _modules()


def _row(module: str) -> str | None:
    """The row of LAYERS a module belongs to (None: none, e.g. a module loose in a group)."""
    parts = module.split(".")[1:]
    for n in (2, 1):
        if len(parts) >= n and ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    return None


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__init__",) or module in _group_modules():
        return 0  # genreid/__init__.py (the version only) and a group's __init__ (docs only)
    if parts[1] == "__main__":
        return LAYERS.index("cli")
    return LAYERS.index(_row(module) or "")


def _group_modules() -> set[str]:
    return {f"genreid.{g}" for g in GROUPS}


def _target(current: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The genreid modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = current.split(".")
        if node.level:
            is_pkg = MODULES[current].name == "__init__.py"
            anchor = base if is_pkg else base[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            mod = ".".join(anchor + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
    out = []
    for name in names:
        while name and name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in MODULES and name.startswith("genreid") and name != "genreid":
            out.append(name)
    return out


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, f in MODULES.items():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges[m] |= {t for t in _target(m, node) if t != m}
    return edges


def test_every_module_belongs_to_a_layer():
    for m in MODULES:
        parts = m.split(".")
        assert len(parts) == 1 or parts[1] == "__main__" or m in _group_modules() or _row(m), m


def test_a_group_of_layers_imports_nothing():
    """``genreid.eval`` only groups its rows: importing it loads none of them."""
    edges = _edges()
    for group in _group_modules():
        assert group in MODULES and not edges[group], (group, edges.get(group))


def test_the_layer_rows_are_read_from_the_module_paths():
    """A sub-package of a group is its own row, in LAYERS' order; reporting is above engine."""
    order = [
        "genreid.eval.ranking.metrics", "genreid.eval.generation.gen_metrics",
        "genreid.eval.deploy.export", "genreid.engine.loop", "genreid.reporting.run_report",
        "genreid.cli",
    ]  # fmt: skip
    assert [_layer(m) for m in order] == sorted({_layer(m) for m in order})
    assert _row("genreid.eval.stray") is None  # a module loose in a group belongs to no row


def test_no_module_imports_a_layer_above_it():
    upward = [
        f"{a} ({LAYERS[_layer(a)]}) imports {b} ({LAYERS[_layer(b)]})"
        for a, targets in _edges().items()
        for b in targets
        if _layer(b) > _layer(a)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    """None, counting every import (function-level and type-checking-only ones too)."""
    edges = _edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            strong(v)
    assert not cycles, cycles


def test_function_level_imports_are_marked_lazy():
    """An import inside a function is there to keep start-up fast; it must say so."""
    unmarked = []
    for f in MODULES.values():
        source = f.read_text().splitlines()
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for stmt in ast.walk(node):
                if not isinstance(stmt, ast.Import | ast.ImportFrom):
                    continue
                # consecutive import lines (blank lines between them allowed) form one block;
                # its first line carries the comment
                first = stmt.lineno
                while first > 1 and (
                    source[first - 2].strip().startswith(("import ", "from "))
                    or (not source[first - 2].strip() and first > 2
                        and source[first - 3].strip().startswith(("import ", "from ")))
                ):  # fmt: skip
                    first -= 1
                if "lazy" not in source[first - 1] and "lazy" not in source[stmt.lineno - 1]:
                    unmarked.append(f"{f.relative_to(PACKAGE.parent)}:{stmt.lineno}")
    assert not unmarked, "function-level imports without a '# lazy: why' comment:\n" + "\n".join(
        unmarked
    )


# A task's or an architecture's own modules: the only ones that may branch on its name.
OWN_MODULES = (
    "engine/tasks/", "models/reid.py", "models/backbones.py", "models/gan/", "models/dgnet/",
)  # fmt: skip
# Conditions on a word that is also a task's or an architecture's name but means another thing.
NOT_A_PLUGIN_NAME = {
    (
        "eval/generation/extractors.py",
        "name == 'reid'",
    ): "the `reid:` feature extractor (a registry key)",
    ("engine/reproduce/spec.py", "'gan' in s"): "a reproduce spec source's `gan:` key",
}

AFFIX_TESTS = ("startswith", "endswith")


def _plugin_names() -> set[str]:
    """The registered names of the tasks and the architectures (re-ID, backbones, GANs)."""
    from genreid.engine.tasks import TASKS
    from genreid.models.backbones import BACKBONES
    from genreid.models.gan import GAN_ARCHS
    from genreid.models.reid import REID_ARCHS

    return {*TASKS, *BACKBONES, *GAN_ARCHS, *REID_ARCHS}


def _strings(node: ast.AST, constants: dict[str, set[str]]) -> set[str]:
    """The strings an operand stands for: a literal, a tuple/list/set of literals, or a
    module-level name bound to one of those."""
    if isinstance(node, ast.Name):
        return constants.get(node.id, set())
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}


def _module_constants(tree: ast.Module) -> dict[str, set[str]]:
    """Module-level names bound to a string or a literal collection of strings."""
    out: dict[str, set[str]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            out |= {t.id: _strings(stmt.value, {}) for t in targets if isinstance(t, ast.Name)}
    return out


def _conditions(tree: ast.Module) -> Iterator[tuple[ast.AST, list[ast.AST]]]:
    """(condition, the operands it tests) of every comparison (``==``, ``in``, ...), match
    case and ``startswith``/``endswith`` call; dict keys, defaults and messages are none."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            yield node, [node.left, *node.comparators]
        elif isinstance(node, ast.match_case):
            values = [p.value for p in ast.walk(node.pattern) if isinstance(p, ast.MatchValue)]
            yield node.pattern, values
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in AFFIX_TESTS:
            yield node, list(node.args)


def test_nothing_outside_a_task_or_its_models_branches_on_its_name():
    """A task answers for its own runs (``Task`` attributes, ``RUN_KINDS``), so no module
    outside a task or its models compares a value with a task's or an architecture's name."""
    names = _plugin_names()
    found = []
    for f in MODULES.values():
        rel = f.relative_to(PACKAGE).as_posix()
        if rel.startswith(OWN_MODULES):
            continue
        tree = ast.parse(f.read_text())
        constants = _module_constants(tree)
        for cond, operands in _conditions(tree):
            hit = names & {s for o in operands for s in _strings(o, constants)}
            if hit and (rel, ast.unparse(cond)) not in NOT_A_PLUGIN_NAME:
                found.append(f"genreid/{rel}:{cond.lineno}: {ast.unparse(cond)}")
    assert not found, "branches on a task's or an architecture's name:\n" + "\n".join(found)


def test_every_task_describes_its_runs():
    """Readers below the engine know a task's runs from ``RUN_KINDS``: one kind per task."""
    from genreid.engine.tasks import TASKS
    from genreid.models.loading import RUN_KINDS

    assert RUN_KINDS.names() == TASKS.names()


def _registries():
    from genreid.data.datasets import DATASETS
    from genreid.engine.tasks import PIPELINES, TASKS
    from genreid.eval.generation.extractors import FEATURE_EXTRACTORS
    from genreid.labels.registry import STRATEGIES
    from genreid.models.gan import GAN_ARCHS
    from genreid.models.loading import RUN_KINDS
    from genreid.models.reid import REID_ARCHS

    return {
        "datasets": DATASETS,
        "strategies": STRATEGIES,
        "reid_archs": REID_ARCHS,
        "gan_archs": GAN_ARCHS,
        "extractors": FEATURE_EXTRACTORS,
        "tasks": TASKS,
        "run_kinds": RUN_KINDS,
        "pipelines": PIPELINES,
    }


@pytest.mark.parametrize("kind", list(_registries()))
def test_every_registered_entry_is_named_by_its_key(kind):
    registry = _registries()[kind]
    assert registry.names()
    for key, entry in registry.items():
        name = getattr(entry, "name", None) or getattr(entry, "__name__", "")
        assert name in (key, f"parse_{key}", key.replace("_", "")), (kind, key, name)


def test_unknown_names_suggest_the_closest():
    from genreid.core.errors import RegistryError
    from genreid.labels.registry import STRATEGIES

    with pytest.raises(RegistryError, match="Did you mean 'lsro'"):
        STRATEGIES.get("lsrox")


def test_help_does_not_import_torch():
    code = "import sys; from genreid.cli import app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_short_flag_means_the_same_everywhere():
    """``-o`` is ``--option`` in every command, never ``--out`` in one and ``--option`` in
    another (and so for every short flag)."""
    import typer.main

    from genreid.cli import app

    meaning: dict[str, set[str]] = {}

    def walk(cmd) -> None:  # a click command or group
        for param in cmd.params:
            shorts = [o for o in param.opts if len(o) == 2 and o.startswith("-")]
            longs = [o for o in param.opts if o.startswith("--")]
            for short in shorts:
                meaning.setdefault(short, set()).update(longs)
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    assert meaning.get("-o") == {"--option"}
    clashes = {short: longs for short, longs in meaning.items() if len(longs) > 1}
    assert not clashes, clashes
