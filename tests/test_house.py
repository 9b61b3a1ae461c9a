"""The house rules a newcomer relies on: every config field documented, and imports that only point down.

The layers, lowest first; a module may import its own layer and the ones below, never one above, and the
module import graph has no cycle (imports inside functions included: a lazy import is still a dependency).
"""

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path

import pytest

import rl4lrm
from rl4lrm.fielddocs import field_docs

ROOT = Path(rl4lrm.__file__).parent

# module-name prefix -> layer; the longest matching prefix wins
LAYERS = {
    "rl4lrm": 0,
    "rl4lrm.registry": 0,
    "rl4lrm.utils": 0,
    "rl4lrm.fielddocs": 0,
    "rl4lrm.schedules": 0,
    "rl4lrm.validation": 0,
    "rl4lrm.checkpoint": 0,
    "rl4lrm.tasks": 1,
    "rl4lrm.cuda_graphs": 2,
    "rl4lrm.decoding": 2,
    "rl4lrm.fused": 2,
    "rl4lrm.rollout": 2,
    "rl4lrm.budget": 2,
    "rl4lrm.models": 2,
    "rl4lrm.passk": 2,
    "rl4lrm.evaluation": 2,
    "rl4lrm.preflight": 2,
    "rl4lrm.corpus": 2,
    "rl4lrm.advantages": 3,
    "rl4lrm.aggregation": 3,
    "rl4lrm.kl": 3,
    "rl4lrm.losses": 3,
    "rl4lrm.critic": 3,
    "rl4lrm.rewards": 4,
    "rl4lrm.presets": 5,
    "rl4lrm.crosswalk": 5,  # a table of names, no imports: the trainer names TRL's knobs in its errors
    "rl4lrm.sampling": 5,
    "rl4lrm.trainer": 6,
    "rl4lrm.exercises": 7,
    "rl4lrm.export": 7,
    "rl4lrm.sweep": 7,
    "rl4lrm.async_rl": 7,
    "rl4lrm.experiments": 8,
    "rl4lrm.viz": 9,
    "rl4lrm.cli": 9,
    # topic packages span the layers: a model and its sampler, the studies, the widgets
    "rl4lrm.diffusion": 2,
    "rl4lrm.diffusion.exercises": 7,
    "rl4lrm.diffusion.studies": 8,
    "rl4lrm.diffusion.viz": 9,
    "rl4lrm.latent": 2,
    "rl4lrm.latent.exercises": 7,
    "rl4lrm.latent.studies": 8,
    "rl4lrm.latent.viz": 9,
    "rl4lrm.sandbox": 1,
    "rl4lrm.agents": 2,
    "rl4lrm.agents.exercises": 7,
    "rl4lrm.agents.studies": 8,
    "rl4lrm.agents.viz": 9,
    "rl4lrm.vision": 2,
    "rl4lrm.vision.exercises": 7,
    "rl4lrm.vision.studies": 8,
    "rl4lrm.vision.viz": 9,
    "rl4lrm.real": 2,
    "rl4lrm.real.exercises": 7,
    "rl4lrm.real.studies": 8,
    "rl4lrm.real.viz": 9,
}


def _modules() -> list[str]:
    names = ["rl4lrm"]
    for info in pkgutil.walk_packages([str(ROOT)], prefix="rl4lrm."):
        names.append(info.name)
    return names


def _path(module: str) -> Path:
    parts = module.split(".")[1:]
    package = ROOT.joinpath(*parts) / "__init__.py"
    return package if package.exists() else ROOT.joinpath(*parts[:-1], parts[-1] + ".py")


def _imports(module: str, known: set[str]) -> set[str]:
    """The rl4lrm modules ``module`` imports (``from pkg import submodule`` counts as importing the submodule)."""
    tree = ast.parse(_path(module).read_text())
    package = module if _path(module).name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rl4lrm")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if not base.startswith("rl4lrm"):
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found - {module}


def _layer(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def _graph() -> dict[str, set[str]]:
    known = set(_modules())
    return {m: _imports(m, known) for m in known}


def test_every_module_has_a_layer():
    assert all(_layer(m) is not None for m in _modules())


def test_no_module_imports_a_higher_layer():
    upward = sorted(
        f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
        for m, deps in _graph().items()
        for d in deps
        if m != "rl4lrm" and _layer(d) > _layer(m) and not m.startswith(d + ".")
    )
    assert upward == []


def _with_packages(deps: set[str]) -> set[str]:
    """``deps`` and the packages above each: importing ``a.b.c`` first runs ``a/b/__init__``."""
    return deps | {d.rsplit(".", k)[0] for d in deps for k in range(1, d.count(".") + 1)}


def test_the_import_graph_has_no_cycle():
    graph = {m: {d for d in _with_packages(deps) - {m} if not m.startswith(d + ".")} for m, deps in _graph().items()}
    # a package's __init__ importing its own submodules is how packages expose them; the reverse edge would be a
    # cycle, and so would a module importing a sibling package whose __init__ imports that module back
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(path[path.index(dep) :] + [dep]) if dep in path else f"{node} -> {dep}")
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def _config_classes():
    classes = {}
    for name in _modules():
        if name.startswith("rl4lrm.viz") or name.endswith(".viz"):
            continue  # widgets need a display stack; they hold no configs
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and dataclasses.is_dataclass(obj)
                and obj.__module__ == name
                and (obj.__name__.endswith("Config") or obj.__name__ in ("Preset", "SamplingContext", "RewardContext"))
            ):
                classes[f"{name}.{obj.__name__}"] = obj
    return classes


def test_the_config_classes_are_found():
    names = set(_config_classes())
    assert {"rl4lrm.trainer.TrainConfig", "rl4lrm.presets.Preset", "rl4lrm.sampling.tree.TreeConfig"} <= names


@pytest.mark.parametrize("name", sorted(_config_classes()))
def test_every_config_field_has_a_docstring(name):
    undocumented = [f for f, doc in field_docs(_config_classes()[name]).items() if not doc]
    assert undocumented == [], f"{name}: fields without a docstring: {undocumented}"


@pytest.mark.parametrize("name", sorted(_config_classes()))
def test_every_config_names_a_keyword_it_has_no_field_for(name):
    # Python's own "unexpected keyword argument" names neither the class's fields nor the closest one
    cls = _config_classes()[name]
    with pytest.raises(TypeError, match=rf"{cls.__name__} has no field 'no_such_setting': its fields are"):
        cls(no_such_setting=1)
