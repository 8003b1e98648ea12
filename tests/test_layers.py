"""Layers point down (../shared/STYLE.md): no import cycle in device/, no ground package importing the
top, and the metrics writer loads without the web side. Read from the code with `ast` (lazy and
TYPE_CHECKING imports count: a cycle hidden in a function is still a cycle)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GROUND = ("device.metrics", "device.models", "device.storage", "device.sources", "device.inference", "device.hive", "device.drift", "device.inbox",
          "device.detections")
TOP = ("device.config", "device.panel", "device.runtime", "device.web", "device.app", "device.cli", "device.facade",
       "device.parts")


def _modules(package: Path) -> dict[str, Path]:
    return {".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in package.rglob("*.py")}


def import_graph(package: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (by absolute name)."""
    modules = _modules(package)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges[module].add(name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            visit(v)
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{m} -> {t}" for m, targets in edges.items() for t in targets
                  if m.startswith(GROUND) and t.startswith(TOP))


def test_device_has_no_import_cycle() -> None:
    assert cycles(import_graph(ROOT / "device")) == []


def test_ground_packages_never_import_the_top() -> None:
    assert upward(import_graph(ROOT / "device")) == []


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    """The walk itself: a planted cycle and a planted upward import are both reported."""
    package = tmp_path / "device"
    (package / "metrics").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "metrics" / "__init__.py").write_text("")
    (package / "metrics" / "sender.py").write_text("from device.config import X\n")
    (package / "config.py").write_text("def f():\n    from device.metrics.sender import Y\n")
    edges = import_graph(package)
    assert cycles(edges) == [["device.config", "device.metrics.sender"]]
    assert upward(edges) == ["device.metrics.sender -> device.config"]


def test_the_metrics_writer_loads_without_the_web_side() -> None:
    """`import device.metrics.sender` once loaded Flask, the panel and OpenCV (through the config)."""
    code = ("import sys, device.metrics.sender; "
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'cv2', 'werkzeug') "
            "or m.startswith(('device.panel', 'device.config', 'device.runtime', 'device.web')))))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
