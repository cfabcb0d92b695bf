"""The import structure: no import circle, and no module importing a higher layer (every
import counts, also those inside functions; only ``if TYPE_CHECKING:`` blocks are left out).

The layers follow the data flow (README, "Layout"): foundations, the result type, the
algorithms (decoder, encoder, tracking...), the Estimator, the outputs, the loops over
sources, the services (batch, serve), the command line. A new module must be given its
layer here; the test says which one is missing.
"""

import ast
from pathlib import Path

from conftest import REPO

SRC = REPO / "src" / "pafpose"

#: Lowest first; a module may import its own layer and those below. Longest prefix wins.
LAYERS: list[tuple[str, ...]] = [
    ("pafpose.errors", "pafpose.preprocess", "pafpose.serve.guard", "pafpose.serve.memory", "pafpose.serve.schemas",
     "pafpose.weights._protobuf"),
    ("pafpose.checks", "pafpose.device", "pafpose.coords", "pafpose.skeleton", "pafpose.images", "pafpose.video",
     "pafpose.weights.checkpoint", "pafpose.weights.openvino_ir", "pafpose.weights.tflite",
     "pafpose.weights.tf_graphdef", "pafpose.data.annotations"),
    ("pafpose.io", "pafpose.storage", "pafpose.fields", "pafpose.draw", "pafpose.data.augment"),
    ("pafpose.pose",),  # the result type
    ("pafpose.decoder", "pafpose.encoder", "pafpose.synthetic", "pafpose.formats", "pafpose.models",
     "pafpose.controlnet", "pafpose.tracking", "pafpose.tracker", "pafpose.offline"),
    ("pafpose.estimator_config", "pafpose.train_config", "pafpose.openpose", "pafpose.evaluate", "pafpose.data",
     "pafpose.export", "pafpose.weights", "pafpose.backends", "pafpose.wholebody"),
    ("pafpose.predict", "pafpose.viz"),  # the Estimator
    ("pafpose.outputs", "pafpose.train"),
    ("pafpose.loops",),
    ("pafpose.batch", "pafpose.serve"),
    ("pafpose.cli",),
    ("pafpose",),  # the package's own namespace: names loaded on first use
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def layer(module: str) -> int:
    best = max((p for group in LAYERS for p in group if module == p or module.startswith(p + ".")), key=len,
               default=None)
    assert best is not None, f"{module} has no layer in tests/test_layers.py: give it one"
    return next(i for i, group in enumerate(LAYERS) if best in group)


def imports(path: Path) -> set[str]:
    """The pafpose modules ``path`` imports (outside ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}

    def known(name: str) -> str | None:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        return name or None

    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {known(a.name) for a in node.names if a.name.startswith("pafpose")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pafpose"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.add(full if full in MODULES else known(node.module))
    return {m for m in out if m and m != module_name(path)}


GRAPH = {m: imports(p) for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


def test_no_module_imports_a_higher_layer():
    wrong = [f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})" for m, deps in sorted(GRAPH.items())
             for d in sorted(deps) if layer(d) > layer(m) and not m.startswith(d + ".")]
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    """Tarjan's strongly connected components over every import (a package's own ``__init__``
    re-exporting its modules is no circle)."""
    def edges(m):
        return [d for d in GRAPH[m] if not m.startswith(d + ".")]

    index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, circles


def test_library_code_never_imports_the_command_line():
    assert not [m for m, deps in GRAPH.items() if not m.startswith("pafpose.cli") and m != "pafpose"
                and any(d.startswith("pafpose.cli") for d in deps)]
