"""Architecture drawings: the DOT source has the layers, shapes, counts and data flow."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import fusion
from fusion import nn
from fusion.viz.architecture import (
    INPUT,
    OUTPUT,
    draw_architecture,
    infer_input_shape,
    trace,
)

HAVE_DOT = shutil.which("dot") is not None


def _id(token: str) -> str:
    return token.strip().strip('"')


def edges(dot) -> set[tuple[str, str]]:
    found = set()
    for line in dot.body:
        match = re.match(r'\s*("[^"]*"|\S+) -> ("[^"]*"|\S+)', line)
        if match:
            found.add((_id(match.group(1)), _id(match.group(2))))
    return found


def labels(dot) -> dict[str, str]:
    found = {}
    for line in dot.body:
        match = re.match(r'\s*("[^"]*"|[^\s\[]+) \[label=("(?:[^"\\]|\\.)*"|\S+)', line)
        if match:
            found[_id(match.group(1))] = match.group(2).strip('"')
    return found


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_sequential_layers_shapes_and_counts(tmp_path):
    dot = draw_architecture(mlp(), (5, 64))
    assert edges(dot) == {(INPUT, "0"), ("0", "1"), ("1", "2"), ("2", OUTPUT)}
    found = labels(dot)
    # Parameter counts by hand: 64 * 32 weights + 32 biases; 32 * 10 + 10.
    assert found["0"].splitlines() == ["0: Linear", "in_features=64, out_features=32, bias=True",
                                       "out (5, 32)", "2,080 parameters"]
    assert found["1"].splitlines() == ["1: ReLU", "out (5, 32)"]
    assert "out (5, 10)" in found["2"] and "330 parameters" in found["2"]
    assert found[INPUT].splitlines() == ["input", "(5, 64)"]
    assert found[OUTPUT].splitlines() == ["output", "(5, 10)"]
    assert "2,410 parameters (2,410 trainable)" in dot.source
    if HAVE_DOT:
        path = dot.render(tmp_path / "mlp", format="svg")
        svg = open(path).read()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "2,080 parameters" in svg


class Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x)) + x


def residual_model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), Residual(8), nn.BatchNorm1d(8), nn.Dropout(0.5),
                         nn.Sequential(nn.Linear(8, 3)))


def test_skip_connections_and_frames_follow_the_computation():
    dot = draw_architecture(residual_model(), (6, 4))
    assert edges(dot) == {
        (INPUT, "0"), ("0", "1.fc"), ("1.fc", "1.act"),
        ("1.act", "2"), ("0", "2"),  # the block's sum reads its input too: a skip edge
        ("2", "3"), ("3", "4.0"), ("4.0", OUTPUT),
    }
    assert "subgraph cluster_1 {" in dot.source and "subgraph cluster_4 {" in dot.source
    assert 'label="1: Residual (72 parameters)"' in dot.source
    assert "out (6, 3)" in labels(dot)["4.0"]


def test_depth_collapses_modules_into_one_box():
    dot = draw_architecture(residual_model(), (6, 4), depth=1)
    assert edges(dot) == {(INPUT, "0"), ("0", "1"), ("1", "2"), ("2", "3"), ("3", "4"),
                          ("4", OUTPUT)}
    assert "cluster" not in dot.source
    assert labels(dot)["1"].splitlines() == ["1: Residual", "out (6, 8)", "72 parameters"]


def test_tracing_leaves_the_model_as_it_was():
    model = residual_model()
    model.train()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    draw_architecture(model, (6, 4))
    assert all(m.training for m in model.modules())
    assert all("forward" not in vars(m) for m in model.modules())
    after = model.state_dict()
    for key, value in before.items():  # BatchNorm's running statistics untouched too
        np.testing.assert_array_equal(after[key].numpy(), value)
    assert all(p.grad is None for p in model.parameters())


def test_a_failing_forward_restores_the_model():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(5, 1))
    with pytest.raises(Exception):  # noqa: B017  (the shapes do not chain: any error)
        trace(model, (1, 3))
    assert all("forward" not in vars(m) for m in model.modules())
    assert model.training


def test_a_layer_called_twice_gets_two_boxes():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(self.fc(x))

    calls, out = trace(Twice(), (2, 3))
    assert [c.node for c in calls] == ["fc", "fc#2", OUTPUT]
    assert [c.sources for c in calls] == [[INPUT], ["fc"], ["fc#2"]]
    assert out == [(2, 3)]


def test_without_an_input_shape_layers_chain_in_registration_order():
    dot = draw_architecture(mlp())
    assert edges(dot) == {(INPUT, "0"), ("0", "1"), ("1", "2"), ("2", OUTPUT)}
    assert "out (" not in dot.source
    assert labels(dot)[INPUT] == "input"


def test_example_input_and_single_layer_model():
    dot = draw_architecture(nn.Linear(3, 2), example=fusion.ones(4, 3))
    assert edges(dot) == {(INPUT, "Linear"), ("Linear", OUTPUT)}
    assert "(model): Linear" in labels(dot)["Linear"]


def test_infer_input_shape_and_errors():
    assert infer_input_shape(mlp()) == (1, 64)
    assert infer_input_shape(nn.Sequential(nn.ReLU())) is None
    with pytest.raises(ValueError, match="input_shape or an example"):
        trace(mlp())


# --- the command line ------------------------------------------------------------------------
@pytest.fixture
def saved_model(tmp_path):
    path = tmp_path / "mlp.safetensors"
    nn.save(mlp(), path)
    return path


def test_cli_draw_writes_dot_source_with_inferred_shapes(saved_model, tmp_path, capsys):
    from fusion.cli import main

    out = tmp_path / "mlp.gv"
    assert main(["draw", str(saved_model), "-o", str(out)]) == 0
    assert "input shape (1, 64)" in capsys.readouterr().out
    source = out.read_text()
    assert "out (1, 32)" in source and "2,080 parameters" in source
    assert f"{INPUT} -> 0" in source and f"2 -> {OUTPUT}" in source
    assert main(["draw", str(saved_model), "-o", "-", "--input-shape", "7,64"]) == 0
    assert "out (7, 10)" in capsys.readouterr().out
    assert main(["draw", str(saved_model), "-o", "-", "--no-shapes"]) == 0
    assert "out (" not in capsys.readouterr().out


@pytest.mark.skipif(not HAVE_DOT, reason="graphviz's dot is not installed")
def test_cli_draw_renders_svg_and_png(saved_model, tmp_path):
    from fusion.cli import main

    assert main(["draw", str(saved_model)]) == 0  # default: the model's name with .svg
    svg = saved_model.with_suffix(".svg").read_text()
    assert "<svg" in svg and "2,080 parameters" in svg
    png = tmp_path / "model.png"
    assert main(["draw", str(saved_model), "-o", str(png), "--rankdir", "LR"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_draw_explains_what_is_missing(saved_model, tmp_path, capsys, monkeypatch):
    from fusion import cli

    assert cli.main(["draw", str(saved_model), "-o", str(tmp_path / "m.txt")]) == 2
    assert "the suffix must be one of" in capsys.readouterr().err
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    assert cli.main(["draw", str(saved_model), "-o", str(tmp_path / "m.svg")]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().err
    assert cli.main(["draw", str(tmp_path / "none.safetensors")]) == 1
    assert "fusion draw:" in capsys.readouterr().err


# --- the op graph of a tensor (fusion.viz.graph) ---------------------------------------------
def node_colours(dot) -> dict[str, str]:
    found = {}
    for line in dot.body:
        match = re.match(r'\s*(\S+) \[label=.*fillcolor=("[^"]*"|\S+)\]', line, re.S)
        if match:
            found[_id(match.group(1))] = match.group(2).strip('"')
    return found


def test_op_graph_names_ops_as_users_know_them_and_hides_constants():
    from fusion.viz.graph import draw_graph

    w = fusion.randn(3, 2, requires_grad=True)
    x = fusion.randn(4, 3)
    dot = draw_graph(((x @ w).relu() * 2 + 1).T.mean(), show_values=False)
    names = [label.splitlines()[0] for label in labels(dot).values()]
    assert names == ["div", "sum", "transpose", "add", "mul", "relu", "matmul", "input",
                     "parameter"]
    # the 2, the 1 and the mean's divisor are not drawn; with show_constants they are
    full = draw_graph(((x @ w).relu() * 2 + 1).T.mean(), show_values=False, show_constants=True)
    assert sum(label.startswith("constant") for label in labels(full).values()) == 3
    loss = fusion.nn.CrossEntropyLoss()(x @ w, fusion.Tensor([0, 1, 1, 0]))
    dot = draw_graph(loss)
    # the leaves are the user's: no detached internals (a one-hot target, a stability max)
    leaves = [name for name, colour in node_colours(dot).items()
              if colour in ("lightgrey", "lightblue")]
    assert sorted(labels(dot)[leaf].splitlines()[0] for leaf in leaves) == ["input",
                                                                            "parameter"]


def edge_list(dot) -> list[tuple[str, str]]:
    return [(_id(a), _id(b)) for a, b in
            (re.match(r'\s*(\S+) -> (\S+)', line).groups() for line in dot.body if " -> " in line)]


def test_op_graph_ids_colours_and_repeated_uses(tmp_path):
    from fusion.viz.graph import draw_graph

    x = fusion.Tensor([1.0, 2.0], requires_grad=True)
    c = fusion.Tensor([3.0, 4.0])
    dot = draw_graph((x * x + c).sum(), show_values=False)
    # Walked from the output: sum (SUM and the RESHAPE that drops its axis), add, mul, x, c.
    found = labels(dot)
    assert [found[f"t{i}"].splitlines()[0] for i in range(5)] == [
        "sum", "add", "mul", "parameter", "input"]
    assert node_colours(dot) == {"t0": "darkolivegreen1", "t1": "white", "t2": "white",
                                 "t3": "lightblue", "t4": "lightgrey"}
    assert edge_list(dot) == [("t1", "t0"), ("t2", "t1"), ("t4", "t1"),
                              ("t3", "t2"), ("t3", "t2")]  # x * x: x is used twice
    assert found["t1"].splitlines()[1] == "2 float32"
    assert draw_graph((x * x + c).sum(), show_values=False).source == dot.source  # stable
    if HAVE_DOT:
        assert "<svg" in open(dot.render(tmp_path / "ops", format="svg")).read()


def test_op_graph_values_saved_tensors_names_and_several_outputs():
    from fusion.viz.graph import draw_graph

    w = fusion.Tensor([0.5, -1.0], requires_grad=True)
    e = w.exp()
    dot = draw_graph({"loss": e.sum(), "e": e}, params={"w": w}, show_saved=True)
    found = labels(dot)
    assert found["t0"].startswith("loss")
    colours = node_colours(dot)
    exp_node = next(k for k, v in found.items() if v.splitlines()[:2] == ["e", "exp"])
    assert colours[exp_node] == "darkolivegreen1"  # an output too
    w_node = next(k for k, v in found.items() if v.startswith("w"))
    assert colours[w_node] == "lightblue"
    assert "data [ 0.5, -1. ]" in found[w_node]
    # Exp keeps its output for backward: an orange node with a dashed edge to it.
    assert colours[f"{exp_node}_out"] == "orange"
    assert f"{exp_node}_out -> {exp_node} [style=dashed]" in dot.source
    with pytest.raises(ValueError, match="more than 2 tensors"):
        draw_graph(e.sum(), max_nodes=2)


def test_op_graph_by_module_frames_and_collapsed_boxes():
    from fusion.viz.graph import draw_graph, record_scopes

    model = residual_model()
    model.eval()
    with record_scopes(model) as scopes:
        out = model(fusion.randn(6, 4)).sum()
    assert all("forward" not in vars(m) for m in model.modules())
    names = [call.name for call in scopes]
    assert names == ["0", "1.fc", "1.act", "1", "2", "3", "4.0", "4", ""]

    framed = draw_graph(out, scopes=scopes, show_values=False,
                        params=dict(model.named_parameters()))
    block, fc = names.index("1"), names.index("1.fc")
    source = framed.source
    # The block's frame holds the frame of its Linear, which holds that layer's weight.
    outer = source.index(f"subgraph cluster_m{block} {{")
    inner = source.index(f"subgraph cluster_m{fc} {{")
    weight = source.index("1.fc.weight")
    assert outer < inner < weight
    assert 'label="1: Residual"' in source and 'label="1.fc: Linear"' in source

    boxes = draw_graph(out, scopes=scopes, collapse=1, show_values=False)
    ids = {names[i]: f"m{i}" for i in range(len(names))}
    found = labels(boxes)
    assert found[ids["1"]].splitlines() == ["1: Residual", "6x8"]
    edges_between_boxes = {e for e in edge_list(boxes) if e[0].startswith("m")}
    # Dropout in eval mode returns its input itself: it runs no op, so it has no box.
    assert ids["3"] not in found
    assert edges_between_boxes == {(ids["0"], ids["1"]), (ids["1"], ids["2"]),
                                   (ids["2"], ids["4"]),
                                   (ids["4"], "t0")}  # t0: the sum outside every module
    assert "cluster" not in boxes.source
