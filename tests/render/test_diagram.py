"""The diagram's layout, SVG, matplotlib figure and DOT text."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from torch import nn

from convscope.models.loading import load_model
from convscope.probe.activations import layer_names
from convscope.probe.graph import model_graph
from convscope.render.diagram import diagram_dot, layout_graph, node_kind
from convscope.render.figures import save_figure

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def graphs():
    return {name: model_graph(load_model(name, seed=0)) for name in
            ("lenet5", "inception", "residual", "inception-residual")}  # fmt: skip


@pytest.mark.parametrize("name", ["lenet5", "inception", "residual", "inception-residual"])
def test_svg_parses_and_names_every_layer(graphs, name: str) -> None:
    graph = graphs[name]
    svg = graph.to_svg()
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    texts = {el.text for el in root.iter(f"{SVG}text")}
    module = load_model(name, seed=0).module
    assert set(layer_names(module)) <= texts  # every layer's name is written in its box
    boxes = root.findall(f".//{SVG}g[@class]")
    assert len([b for b in boxes if b.get("class", "").startswith("node")]) == len(graph.nodes)
    paths = root.findall(f".//{SVG}path[@marker-end]")
    assert len(paths) == len(graph.edges)
    assert graph._repr_svg_() == svg


def test_layout_flows_down_without_overlaps(graphs) -> None:
    for graph in graphs.values():
        lay = layout_graph(graph)
        for src, dst in graph.edges:
            assert lay.boxes[dst].y > lay.boxes[src].y
        rows: dict[float, list] = {}
        for box in lay.boxes.values():
            rows.setdefault(box.y, []).append(box)
            assert box.x - box.width / 2 >= 0 and box.x + box.width / 2 <= lay.width
        for row in rows.values():
            row.sort(key=lambda b: b.x)
            for left, right in pairwise(row):
                assert right.x - right.width / 2 >= left.x + left.width / 2 + 1


def test_main_path_is_straight_and_merges_are_centred(graphs) -> None:
    residual = layout_graph(graphs["residual"])
    xs = {round(residual.boxes[i].x, 3) for i in
          ("conv2d_1", "batc1", "acti1", "conv2d_2", "add1", "pool1", "flat1", "end")}  # fmt: skip
    assert len(xs) == 1  # the shortcut bends around the blocks, not the other way round
    inception = layout_graph(graphs["inception"])
    conc = inception.boxes["conc1"]
    left, right = inception.boxes["drop1"], inception.boxes["drop2"]
    assert conc.x == pytest.approx((left.x + right.x) / 2, abs=0.5)
    assert inception.boxes["x"].x == pytest.approx(conc.x, abs=0.5)


def test_edges_into_a_merge_arrive_at_separate_ports(graphs) -> None:
    lay = layout_graph(graphs["inception-residual"])
    graph = graphs["inception-residual"]
    ends = [points[-1] for points, (_, dst) in zip(lay.edges, graph.edges, strict=True)
            if dst == "add1"]  # fmt: skip
    assert len(ends) == 3 and len({x for x, _ in ends}) == 3


def test_node_kinds_colour_layers_by_role(graphs) -> None:
    graph = graphs["residual"]
    kinds = {node.name: node_kind(node) for node in graph.nodes}
    assert kinds["conv2D_1"] == "conv" and kinds["batc1"] == "norm" and kinds["acti1"] == "act"
    assert kinds["add1"] == "merge" and kinds["pool1"] == "pool" and kinds["hidden"] == "dense"
    assert kinds["drop1"] == "dropout" and kinds["input"] == "io"


def test_matplotlib_figure_draws_the_same_boxes(graphs, tmp_path) -> None:
    graph = graphs["inception"]
    fig = graph.figure()
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"conc1", "conv2D_12", "hidden", "Concat"} <= texts
    path = save_figure(fig, tmp_path / "inception.png")
    assert path.stat().st_size > 10_000


def test_dot_text_has_every_node_and_edge(graphs) -> None:
    graph = graphs["residual"]
    dot = diagram_dot(graph)
    assert dot.startswith('digraph "residual" {') and dot.rstrip().endswith("}")
    assert '"conv2d_1" -> "add1";' in dot and '"conv2d_2" -> "add1";' in dot
    assert dot.count("->") == len(graph.edges)


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if x.mean() > 0 else -self.conv(x)


def test_fallback_diagram_shows_the_note() -> None:
    graph = model_graph(Branchy(), (1, 6, 6))
    svg = graph.to_svg()
    root = ET.fromstring(svg)
    texts = " ".join(el.text or "" for el in root.iter(f"{SVG}text"))
    assert "could not be traced" in texts and "conv" in texts
    assert "module tree" in " ".join(t.get_text() for t in graph.figure().axes[0].texts)


def test_save_writes_svg_directly_and_png_through_matplotlib(graphs, tmp_path) -> None:
    graph = graphs["lenet5"]
    svg = graph.save(str(tmp_path / "lenet5.svg"))
    assert ET.parse(svg).getroot().tag == f"{SVG}svg"
    assert "Conv2dAct · relu" in Path(svg).read_text(encoding="utf-8")  # its own activation
    png = graph.save(str(tmp_path / "lenet5.png"))
    assert Path(png).read_bytes()[:4] == b"\x89PNG"
