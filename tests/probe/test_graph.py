"""The traced architecture graph: merges of the zoo's branches, shapes, parameters, fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from convscope.errors import ModelError
from convscope.models.loading import load_model
from convscope.probe.graph import ROOT_ID, model_graph
from convscope.probe.summary import count_params


def by_name(graph, name: str):
    matches = [node for node in graph.nodes if node.name == name]
    assert len(matches) == 1, (name, matches)
    return matches[0]


def input_names(graph, name: str) -> list[str]:
    return [graph.node(src).name for src in graph.predecessors(by_name(graph, name).id)]


def test_inception_branches_merge_at_each_concatenation() -> None:
    graph = model_graph(load_model("inception", seed=0))
    assert graph.traced and graph.note is None and graph.depth is None
    # each block: a 2x2 branch and a 3x3 branch, both forking from the block input
    assert input_names(graph, "conc1") == ["drop1", "drop2"]
    assert input_names(graph, "conc2") == ["drop3", "drop4"]
    assert input_names(graph, "conc3") == ["drop5", "drop6"]
    assert input_names(graph, "conv2D_1") == input_names(graph, "conv2D_3") == ["input"]
    assert input_names(graph, "conv2D_5") == input_names(graph, "conv2D_7") == ["conc1"]
    conc1 = by_name(graph, "conc1")
    assert conc1.type == "Concat" and conc1.output_shape == [1, 64, 14, 14]
    assert len(graph.successors(by_name(graph, "conc1").id)) == 2
    assert by_name(graph, "conv2D_1").output_shape == [1, 32, 28, 28]
    assert by_name(graph, "conv2D_3").params == 3 * 3 * 32 + 32


def test_residual_adds_have_two_inputs_with_the_shortcut() -> None:
    graph = model_graph(load_model("residual", seed=0))
    # block 1 adds its first convolution's output; later blocks add the block input
    assert input_names(graph, "add1") == ["conv2D_1", "conv2D_2"]
    assert input_names(graph, "add2") == ["drop1", "conv2D_4"]
    assert input_names(graph, "add3") == ["drop2", "conv2D_6"]
    assert by_name(graph, "batc1").params == 128  # gamma, beta + moving mean and variance


def test_inception_residual_adds_the_shortcut_and_both_branches() -> None:
    graph = model_graph(load_model("inception-residual", seed=0))
    assert input_names(graph, "add1") == ["conv2D_1", "conv2D_2", "conv2D_4"]
    assert input_names(graph, "add2") == ["drop1", "conv2D_6", "conv2D_8"]


@pytest.mark.parametrize(
    "name",
    ["lenet", "lenet5", "lenet5-classic", "sequential", "inception", "residual",
     "inception-residual"],
)  # fmt: skip
def test_params_of_the_nodes_sum_to_the_model_total(name: str) -> None:
    model = load_model(name, seed=0)
    graph = model_graph(model)
    total = count_params(model.module)[0]
    assert graph.total_params == total
    assert sum(node.params for node in graph.nodes) == total
    assert graph.nodes[0].op == "placeholder" and graph.nodes[-1].op == "output"
    assert graph.nodes[-1].output_shape == [1, 10]


def test_lenet5_classic_traces_with_its_own_layers() -> None:
    graph = model_graph(load_model("lenet5-classic", seed=0))
    names = [node.name for node in graph.nodes]
    assert names == ["input", "C1", "S2", "C3", "S4", "C5", "flatten", "F6", "output",
                     "model output"]  # fmt: skip
    c3 = by_name(graph, "C3")
    assert (c3.type, c3.params, c3.output_shape) == ("PartialConv2d", 1516, [1, 16, 10, 10])
    assert by_name(graph, "flatten").type == "Tensor.flatten"
    assert by_name(graph, "output").type == "RBFOutput"


def test_resnet50_is_collapsed_to_its_bottleneck_blocks() -> None:
    model = load_model("resnet50")
    graph = model_graph(model)
    assert graph.traced and graph.depth == 2 and len(graph.nodes) <= 60
    blocks = [node for node in graph.nodes if node.type == "Bottleneck"]
    assert len(blocks) == 16 and all(node.collapsed for node in blocks)
    assert blocks[0].name == "layer1.0" and blocks[0].output_shape == [1, 256, 56, 56]
    assert sum(node.params for node in graph.nodes) == count_params(model.module)[0]
    assert by_name(graph, "flatten").type == "torch.flatten"


def test_depth_chooses_how_far_modules_are_opened() -> None:
    model = load_model("torchvision:resnet18")
    top = model_graph(model, (3, 64, 64), depth=1)
    layers = [n.name for n in top.nodes if n.type == "Sequential"]
    assert layers == [f"layer{i}" for i in range(1, 5)]
    assert top.depth == 1 and by_name(top, "layer4").output_shape == [1, 512, 2, 2]
    full = model_graph(model, (3, 64, 64), max_nodes=1000)
    assert full.depth is None and not any(node.collapsed for node in full.nodes)
    # torchvision's BasicBlock adds the shortcut (out += identity): a merge with two inputs
    adds = [node for node in full.nodes if node.type == "operator.add"]
    assert len(adds) == 8 and all(len(full.predecessors(node.id)) == 2 for node in adds)


class DataDependent(nn.Module):
    """Control flow on a tensor value: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if x.sum() > 0:
            x = self.block(x)
        return x


def test_untraceable_model_falls_back_to_the_module_tree() -> None:
    module = DataDependent()
    graph = model_graph(module, (1, 8, 8))
    assert not graph.traced
    assert "could not be traced" in graph.note and "module tree" in graph.note
    assert {node.name for node in graph.nodes} >= {"conv", "block", "block.0", "block.1"}
    assert graph.predecessors("block.1") == ["block"]
    assert graph.predecessors("conv") == [ROOT_ID]
    assert sum(node.params for node in graph.nodes) == count_params(module)[0]
    assert by_name(graph, "conv").output_shape == [1, 4, 6, 6]
    json.dumps(graph.to_dict())  # JSON-ready


def test_model_that_does_not_run_is_a_model_error(capfd) -> None:
    with pytest.raises(ModelError, match="does not run through"):
        model_graph(nn.Linear(5, 3), (1, 8, 8))
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    with pytest.raises(ModelError, match=r"expected input.*to have 1 channels"):
        model_graph(conv, (3, 28, 28))
    assert capfd.readouterr().err == ""  # no traceback printed on the way


def test_to_dict_lists_nodes_and_edges() -> None:
    graph = model_graph(load_model("lenet5", seed=0))
    data = json.loads(json.dumps(graph.to_dict()))
    assert data["traced"] is True and data["total_params"] == 44_426
    assert {"id", "name", "type", "output_shape", "params", "op"} <= set(data["nodes"][1])
    assert len(data["edges"]) == len(data["nodes"]) - 1  # a chain


def test_save_writes_svg_and_dot_directly(tmp_path) -> None:
    graph = model_graph(load_model("lenet5", seed=0))
    assert "<svg" in Path(graph.save(str(tmp_path / "m.svg"))).read_text()[:300]
    assert Path(graph.save(str(tmp_path / "m.dot"))).read_text().startswith("digraph")


def test_bare_module_without_input_shape_is_the_same_error_for_diagram_and_summary() -> None:
    from convscope.errors import ConvscopeError
    from convscope.probe.summary import summarize

    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    messages = []
    for probe in (model_graph, summarize):
        with pytest.raises(ConvscopeError, match=r"needs input_shape=\(C, H, W\)") as error:
            probe(module)
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert model_graph(module, (1, 5, 5)).model == "Sequential"


def test_save_with_graphviz_or_its_one_line_error(tmp_path: Path, monkeypatch) -> None:
    import shutil

    from convscope.errors import ConvscopeError

    graph = model_graph(load_model("lenet5"))
    with pytest.raises(ConvscopeError, match="unknown layout engine 'neato'"):
        graph.save(str(tmp_path / "m.svg"), engine="neato")
    if shutil.which("dot") is None:
        with pytest.raises(ConvscopeError, match="needs Graphviz's `dot` program on PATH"):
            graph.save(str(tmp_path / "m.svg"), engine="dot")
        assert not (tmp_path / "m.svg").exists()
    else:
        graph.save(str(tmp_path / "m.svg"), engine="dot")
        assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here, whatever the machine has
    with pytest.raises(ConvscopeError, match="needs Graphviz"):
        graph.save(str(tmp_path / "m.png"), engine="dot")
    assert graph.save(str(tmp_path / "m.dot"), engine="dot").endswith("m.dot")  # no layout
