"""The architecture as a graph: layers, output shapes, parameters, branches and merges.

Built on ``torch.fx``: the forward is traced symbolically, with every module that has
no children (or sits at ``depth``) kept as one node, and ``ShapeProp`` runs one real
input through the traced graph for the output shapes. A forward that cannot be traced
(data-dependent control flow such as ``if x.sum() > 0``) falls back to the module tree
(containment, not data flow) with a note saying so; it never fails the diagram.
Large graphs (torchvision models) are collapsed to the deepest module depth that keeps
at most ``max_nodes`` nodes, so ResNet-50 shows its 16 bottleneck blocks, not 177 ops.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from convscope.errors import ConvscopeError, ModelError
from convscope.models.loaded import LoadedModel, module_and_shape, weights_of
from convscope.models.modes import evaluating
from convscope.probe.activations import borrowed_hooks
from convscope.probe.base import FigureResult
from convscope.probe.summary import count_params

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ROOT_ID = "__root__"
"""Id of the model's own node in a module-tree fallback."""

MAX_NODES = 60
"""Default most nodes drawn before modules are collapsed to a shallower depth."""


@dataclass(frozen=True)
class GraphNode:
    """One node: a module call, a function/method call, a parameter, or the input/output.

    ``name`` is the module's dotted name for module calls (a module called twice gives
    two nodes with one name and two ids); ``params`` counts a module's parameters (with
    BatchNorm statistics, as the summary does) at its first call only, so the nodes'
    params add up to the model's total. ``collapsed`` marks a module drawn as one box
    although it has sub-modules; ``activation`` names the activation a layer applies
    itself (the zoo's ``Conv2dAct``/``LinearAct``, like Keras' ``activation=``).
    """

    id: str
    name: str
    type: str
    op: str
    output_shape: list[int] | list[list[int]] | None
    params: int
    collapsed: bool = False
    activation: str | None = None


ENGINES = ("python", "dot")
"""Diagram layouts: ``python``, convscope's own (no system program), or Graphviz's ``dot``."""


def require_graphviz() -> None:
    """Refuse, in one line, when Graphviz's ``dot`` program is not on PATH."""
    import shutil

    if shutil.which("dot") is None:
        raise ConvscopeError(
            "--engine dot needs Graphviz's `dot` program on PATH; install graphviz, "
            "or leave out --engine to use convscope's own layout"
        )


def graphviz_render(dot: str, fmt: str) -> bytes:
    """DOT source rendered by Graphviz's ``dot -T<fmt>``; one-line errors."""
    import subprocess

    require_graphviz()
    rendered = subprocess.run(
        ["dot", f"-T{fmt}"], input=dot.encode(), capture_output=True, check=False
    )
    if rendered.returncode != 0:
        detail = " ".join(rendered.stderr.decode(errors="replace").split())[:160]
        raise ConvscopeError(f"Graphviz `dot` failed ({detail}); try without --engine dot")
    return rendered.stdout


@dataclass
class ModelGraph(FigureResult):
    """A model's data-flow graph (or, where tracing failed, its module tree)."""

    model: str
    input_shape: list[int]
    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    traced: bool
    depth: int | None = None
    note: str | None = None
    total_params: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    model_weights: str = ""

    def node(self, node_id: str) -> GraphNode:
        """The node with id ``node_id``."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def predecessors(self, node_id: str) -> list[str]:
        """Ids of the nodes with an edge into ``node_id``, in edge order."""
        return [src for src, dst in self.edges if dst == node_id]

    def successors(self, node_id: str) -> list[str]:
        """Ids of the nodes ``node_id`` has an edge to, in edge order."""
        return [dst for src, dst in self.edges if src == node_id]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: nodes, edges as ``[src, dst]`` pairs, whether traced, and the note."""
        return {
            "model": self.model,
            "weights": self.model_weights,
            "input_shape": self.input_shape,
            "traced": self.traced,
            "depth": self.depth,
            "note": self.note,
            "total_params": self.total_params,
            "nodes": [asdict(node) for node in self.nodes],
            "edges": [[src, dst] for src, dst in self.edges],
        }

    def figure(self, **options: Any) -> Figure:
        """The diagram drawn with matplotlib (same layout as :meth:`to_svg`)."""
        from convscope.render.diagram import diagram_figure

        return diagram_figure(self, **options)

    def to_svg(self, **options: Any) -> str:
        """The diagram as a standalone SVG document (written directly, no matplotlib)."""
        from convscope.render.diagram import diagram_svg

        return diagram_svg(self, **options)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT (for ``dot -Tsvg``)."""
        from convscope.render.diagram import diagram_dot

        return diagram_dot(self)

    def save(self, path: str, *, engine: str = "python", **options: Any) -> str:
        """Write the diagram to ``path``: SVG or DOT (.dot/.gv) directly, PNG/PDF via matplotlib.

        ``engine="dot"`` lays out SVG/PNG/PDF with Graphviz's ``dot`` program instead of
        convscope's own layout (a clear error when it is not installed).
        """
        from pathlib import Path

        from convscope.files import atomic_write_bytes, check_writable

        suffix = Path(path).suffix.lower()
        if engine not in ENGINES:
            raise ConvscopeError(f"unknown layout engine {engine!r}; use {' or '.join(ENGINES)}")
        check_writable(path)
        if suffix in (".dot", ".gv"):
            atomic_write_bytes(path, self.to_dot().encode())
        elif engine == "dot":
            atomic_write_bytes(path, graphviz_render(self.to_dot(), suffix.lstrip(".")))
        elif suffix == ".svg":
            atomic_write_bytes(path, self.to_svg(**options).encode())
        else:
            return super().save(path, **options)
        return str(path)

    def _repr_svg_(self) -> str:
        return self.to_svg()


def model_graph(
    model: LoadedModel | nn.Module,
    input_shape: tuple[int, ...] | None = None,
    *,
    depth: int | None = None,
    max_nodes: int = MAX_NODES,
    name: str | None = None,
) -> ModelGraph:
    """Trace ``model`` into a :class:`ModelGraph` with shapes from one input of ``input_shape``.

    ``depth`` keeps modules deeper than that many dots inside their ancestor's box (1:
    top-level modules only); by default the deepest depth with at most ``max_nodes``
    nodes is chosen. Untraceable models give the module tree with ``traced=False``.
    """
    if depth is not None and depth < 1:
        raise ConvscopeError("--depth must be at least 1")
    if max_nodes < 2:
        raise ConvscopeError("--max-nodes must be at least 2")
    module, input_shape, default_name = module_and_shape(model, input_shape)
    name = name or default_name
    example = torch.zeros(1, *input_shape)
    with evaluating(module, grad=True):
        try:
            graph = _traced_graph(module, example, depth, max_nodes)
        except Exception as exc:  # any tracing failure: draw the module tree instead
            shapes = _module_shapes(module, example, name)  # a ModelError if it cannot run
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            note = (
                f"{name} could not be traced with torch.fx ({type(exc).__name__}: {reason}); "
                "showing the module tree (what contains what), not the data flow"
            )
            graph = _module_tree(module, shapes, depth, max_nodes, note)
    total = count_params(module)[0]
    missing = total - sum(node.params for node in graph.nodes)
    note = graph.note
    if missing > 0:
        extra = f"{missing:,} parameters belong to modules the forward pass does not call"
        note = f"{note}; {extra}" if note else extra
    return ModelGraph(
        model=name,
        model_weights=weights_of(model),
        input_shape=list(input_shape),
        nodes=graph.nodes,
        edges=graph.edges,
        traced=graph.traced,
        depth=graph.depth,
        note=note,
        total_params=total,
    )


@dataclass
class _Graph:
    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    traced: bool
    depth: int | None
    note: str | None = None


def _module_depth(qualname: str) -> int:
    return qualname.count(".") + 1


def _max_depth(module: nn.Module) -> int:
    return max((_module_depth(n) for n, _ in module.named_modules() if n), default=1)


def _module_shapes(module: nn.Module, example: torch.Tensor, name: str) -> dict[str, Any]:
    """Output shape of every module's last call in one real forward pass.

    Also the check that the model runs at all on ``example`` (else a ModelError).
    """
    shapes: dict[str, Any] = {}

    def hook_for(qualname: str):
        def hook(_m: nn.Module, _inputs: object, output: object) -> None:
            shapes[qualname] = _shape_of(output)

        return hook

    hooks = [(sub, hook_for(qualname)) for qualname, sub in module.named_modules() if qualname]
    try:
        with borrowed_hooks(hooks), torch.no_grad():
            shapes[""] = _shape_of(module(example))
    except Exception as exc:
        cause = " ".join(str(exc).split())[:160]
        raise ModelError(
            f"{name}: an input of shape {tuple(example.shape[1:])} does not run through the "
            f"model ({cause}); check --input-shape"
        ) from exc
    return shapes


def _shape_of(value: object) -> list[int] | list[list[int]] | None:
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, (tuple, list)):
        shapes = [list(v.shape) for v in value if isinstance(v, torch.Tensor)]
        return shapes or None
    return None


def _tracer(depth: int | None) -> Any:
    from torch import fx

    class LayerTracer(fx.Tracer):
        """Keeps childless modules (and modules at ``depth``) as single nodes."""

        def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
            if next(iter(m.children()), None) is None:
                return True
            return depth is not None and _module_depth(module_qualified_name) >= depth

    return LayerTracer()


def _traced_graph(
    module: nn.Module, example: torch.Tensor, depth: int | None, max_nodes: int
) -> _Graph:
    """Trace at ``depth`` (or the deepest depth under ``max_nodes``) and propagate shapes."""
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp

    if depth is None:
        graph = _tracer(None).trace(module)
        chosen = None
        for candidate in range(_max_depth(module) - 1, 0, -1):
            if len(graph.nodes) <= max_nodes:
                break
            graph, chosen = _tracer(candidate).trace(module), candidate
        depth = chosen
    else:
        graph = _tracer(depth).trace(module)
    graph_module = fx.GraphModule(module, graph)
    # ShapeProp prints a traceback of its own before it re-raises; the caller reports the error.
    with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
        ShapeProp(graph_module).propagate(example)
    modules = dict(module.named_modules())
    seen_modules: set[int] = set()
    seen_params: set[int] = set()
    nodes: list[GraphNode] = []
    edges: list[tuple[str, str]] = []
    for fx_node in graph.nodes:
        nodes.append(_node(fx_node, module, modules, seen_modules, seen_params))
        edges += [(src.name, fx_node.name) for src in fx_node.all_input_nodes]
    names = {node.name for node in nodes if node.op != "output"}
    if "output" in names:  # a layer called output (LeNet-5's RBF layer): name the result apart
        nodes = [replace(n, name="model output") if n.op == "output" else n for n in nodes]
    return _Graph(nodes=nodes, edges=edges, traced=True, depth=depth)


def _node(
    fx_node: Any,
    root: nn.Module,
    modules: dict[str, nn.Module],
    seen_modules: set[int],
    seen_params: set[int],
) -> GraphNode:
    """A :class:`GraphNode` for one fx node, counting each module's parameters once."""
    shape = _meta_shape(fx_node.meta.get("tensor_meta"))
    op = fx_node.op
    if op == "placeholder":
        return GraphNode(fx_node.name, "input", "Input", op, shape, 0)
    if op == "output":
        return GraphNode(fx_node.name, "output", "Output", op, shape, 0)
    if op == "call_module":
        target = str(fx_node.target)
        sub = modules[target]
        params = 0
        if id(sub) not in seen_modules:
            seen_modules.add(id(sub))
            params = count_params(sub)[0]
        collapsed = next(iter(sub.children()), None) is not None
        activation = getattr(sub, "activation", None)
        return GraphNode(
            fx_node.name,
            target,
            type(sub).__name__,
            op,
            shape,
            params,
            collapsed,
            activation if isinstance(activation, str) else None,
        )
    if op == "get_attr":
        target = str(fx_node.target)
        value = _resolve_attr(root, target)
        params = 0
        if isinstance(value, nn.Parameter) and id(value) not in seen_params:
            seen_params.add(id(value))
            params = value.numel()
        kind = "Parameter" if isinstance(value, nn.Parameter) else "Buffer"
        return GraphNode(fx_node.name, target, kind, op, shape, params)
    return GraphNode(fx_node.name, fx_node.name, _callable_name(fx_node), op, shape, 0)


def _callable_name(fx_node: Any) -> str:
    """``Tensor.flatten`` for a method call, ``torch.flatten`` / ``operator.add`` for functions."""
    target = fx_node.target
    if fx_node.op == "call_method":
        return f"Tensor.{target}"
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", None) or ""
    if module == "_operator":
        module = "operator"
    elif module.startswith("torch"):
        module = "torch" if not module.startswith("torch.nn.functional") else "F"
    return f"{module}.{name}" if module and module != "builtins" else name


def _resolve_attr(root: nn.Module, target: str) -> object:
    value: object = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _meta_shape(meta: object) -> list[int] | list[list[int]] | None:
    """Shape(s) from ShapeProp's ``TensorMetadata`` (or a tuple of them)."""
    if meta is None:
        return None
    if hasattr(meta, "shape"):
        return list(meta.shape)  # type: ignore[attr-defined]
    if isinstance(meta, (tuple, list)):
        shapes = [list(m.shape) for m in meta if hasattr(m, "shape")]
        return shapes or None
    return None


def _module_tree(
    module: nn.Module, shapes: dict[str, Any], depth: int | None, max_nodes: int, note: str
) -> _Graph:
    """Modules as a containment tree (root -> children), for models fx cannot trace."""
    named = [(n, m) for n, m in module.named_modules() if n]
    if depth is None:
        depth = _max_depth(module)
        while depth > 1 and sum(_module_depth(n) <= depth for n, _ in named) + 1 > max_nodes:
            depth -= 1
    kept = {n: m for n, m in named if _module_depth(n) <= depth}
    root_params = sum(p.numel() for p in module.parameters(recurse=False))
    nodes = [
        GraphNode(ROOT_ID, type(module).__name__, type(module).__name__, "module", shapes.get(""),
                  root_params, collapsed=not kept)
    ]  # fmt: skip
    edges: list[tuple[str, str]] = []
    for qualname, sub in kept.items():
        at_cut = _module_depth(qualname) == depth or next(iter(sub.children()), None) is None
        params = count_params(sub)[0] if at_cut else _own_params(sub)
        collapsed = at_cut and next(iter(sub.children()), None) is not None
        nodes.append(
            GraphNode(qualname, qualname, type(sub).__name__, "module", shapes.get(qualname),
                      params, collapsed)
        )  # fmt: skip
        parent = qualname.rpartition(".")[0]
        edges.append((parent if parent else ROOT_ID, qualname))
    return _Graph(nodes=nodes, edges=edges, traced=False, depth=depth, note=note)


def _own_params(module: nn.Module) -> int:
    """Parameters held directly by ``module`` (not its children), BN statistics included."""
    total = sum(p.numel() for p in module.parameters(recurse=False))
    if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats:
        total += sum(b.numel() for b in (module.running_mean, module.running_var) if b is not None)
    return total
