"""The package's shape: no import cycle; its layers, each importing only from itself and the
layers below (the spine never imports a learning tool, the CLI or a benchmark); no private name
imported across modules; at most 12 top-level modules besides the subpackages."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "npbigram"
SPINE = ("npbigram.ops", "npbigram.model", "npbigram.sampling", "npbigram.optim",
         "npbigram.train", "npbigram.engine", "npbigram.data", "npbigram.run",
         "npbigram.checkpoint", "npbigram.preflight")
OUTSIDE_THE_SPINE = ("npbigram.tools", "npbigram.cli", "benchmarks")
# lowest first: the math, the utilities, the library (the spine and what serves it), the
# learning tools and the package's public names, the command line
LAYERS = (("npbigram.ops",), ("npbigram.utils",), ("npbigram",),
          ("npbigram.tools", "npbigram.__init__"), ("npbigram.cli", "npbigram.__main__"))
MAX_TOP_LEVEL_MODULES = 12


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name, path):
    """(module, imported names) of every import in the module, wherever it stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names = tuple(alias.name for alias in node.names)
            found.append((module, names))
            # `from . import ops` imports a module
            found += [(f"{module}.{n}", ()) for n in names if f"{module}.{n}" in modules()]
    return found


def import_graph():
    known = modules()
    graph = {}
    for name, path in known.items():
        graph[name] = {module for module, _ in imports_of(name, path) if module in known}
    return graph


def test_no_import_cycle():
    graph, done, path = import_graph(), set(), []

    def visit(module):
        if module in path:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(module):])} -> "
                                 f"{module}")
        if module in done:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            if imported != module and not module.startswith(imported + "."):
                visit(imported)  # a package's own __init__ is not a cycle
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def layer(name):
    """The index in LAYERS of a module's layer: its longest matching prefix (the package's own
    __init__ by that name)."""
    name = "npbigram.__init__" if name == "npbigram" else name
    return max(((len(prefix), index) for index, names in enumerate(LAYERS) for prefix in names
                if name == prefix or name.startswith(prefix + ".")))[1]


def test_each_layer_imports_only_from_itself_and_the_layers_below():
    """The math imports nothing of the package, the library no tool or command; a module's
    own package (`from .. import ops`) is no import of a layer above."""
    upward = [(name, module) for name, path in modules().items()
              for module, _ in imports_of(name, path)
              if module in modules() and not name.startswith(module + ".")
              and layer(module) > layer(name)]
    assert not upward
    assert layer("npbigram.ops") < layer("npbigram.model") < layer("npbigram.tools.explain")


def test_the_spine_imports_no_tool_cli_or_benchmark():
    wrong = [(name, module) for name, path in modules().items() if name.startswith(SPINE)
             for module, _ in imports_of(name, path) if module.startswith(OUTSIDE_THE_SPINE)]
    assert not wrong


def test_no_private_name_is_imported_from_another_module():
    private = [(name, module, imported) for name, path in modules().items()
               for module, names in imports_of(name, path) for imported in names
               if imported.startswith("_") and not imported.startswith("__")]
    assert not private


def test_few_top_level_modules():
    top = [path.name for path in PACKAGE.glob("*.py") if path.name not in ("__init__.py",
                                                                          "__main__.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(top)
