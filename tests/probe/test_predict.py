"""Predictions: softmax of logits, no second softmax, named top classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from convscope.data.preprocess import InputSpec
from convscope.models.loaded import LoadedModel
from convscope.probe.predict import predict, probabilities


def _model(module: nn.Module, *, ends_in_softmax: bool = False) -> LoadedModel:
    return LoadedModel(
        module=module,
        name="toy",
        input_spec=InputSpec(1, 1, 3),
        class_names=("a", "b", "c"),
        outputs_probabilities=ends_in_softmax,
    )


def _identity_logits() -> nn.Module:
    return nn.Flatten()  # the 1x1x3 input itself is the logit vector


def test_probabilities_are_softmax_of_logits() -> None:
    x = torch.tensor([[[[1.0, 2.0, 3.0]]]])
    probs = probabilities(_model(_identity_logits()), x)
    torch.testing.assert_close(probs, torch.softmax(torch.tensor([[1.0, 2.0, 3.0]]), dim=1))


def test_model_ending_in_softmax_is_not_softmaxed_again() -> None:
    x = torch.tensor([[[[0.2, 0.3, 0.5]]]])
    probs = probabilities(_model(_identity_logits(), ends_in_softmax=True), x)
    torch.testing.assert_close(probs, torch.tensor([[0.2, 0.3, 0.5]]))


def test_top_classes_are_named_and_sorted() -> None:
    x = torch.tensor([[[[0.0, 5.0, 1.0]]], [[[3.0, 0.0, 0.0]]]])
    result = predict(
        _model(_identity_logits()), x, ["first", "second"], top_k=2, labels=["b", None]
    )
    first, second = result.predictions
    assert [name for name, _ in first.top] == ["b", "c"]
    assert second.top[0][0] == "a"
    assert abs(sum(first.probs) - 1) < 1e-5
    data = result.to_dict()
    assert set(data["predictions"][0]) == {"input", "probs", "top", "label"}
    assert "second" in result._repr_html_()


def test_predict_leaves_the_training_flag_alone() -> None:
    module = nn.Sequential(nn.Flatten(), nn.Dropout(0.5))
    module.train()
    predict(_model(module), torch.ones(1, 1, 1, 3), ["x"])
    assert module.training


def test_a_spec_is_predicted_with_its_names_and_labels() -> None:
    from convscope.data.spec import resolve_images, to_batch
    from convscope.models.loading import load_model

    model = load_model("lenet5", seed=0)
    by_spec = predict(model, "mnist:test:0-3")
    images = resolve_images("mnist:test:0-3", input_spec=model.input_spec)
    by_tensor = predict(model, to_batch(images, model.input_spec))
    assert [p.input for p in by_spec.predictions] == [i.name for i in images]
    assert [p.label for p in by_spec.predictions] == [i.label_name for i in images]
    assert [p.probs for p in by_spec.predictions] == [p.probs for p in by_tensor.predictions]
    assert [p.input for p in by_tensor.predictions] == ["0", "1", "2"]


def test_mistakes_are_user_errors() -> None:
    import pytest

    from convscope.errors import ConvscopeError

    model = _model(_identity_logits())
    x = torch.ones(2, 1, 1, 3)
    with pytest.raises(ConvscopeError, match="top_k must be at least 1"):
        predict(model, x, top_k=0)
    with pytest.raises(ConvscopeError, match=r"one name .* per image: 2 images"):
        predict(model, x, ["only one"])
    with pytest.raises(ConvscopeError, match="takes N x 1 x 1 x 3 inputs, got 2 x 3 x 1 x 3"):
        predict(model, torch.ones(2, 3, 1, 3))


def test_probabilities_are_not_rounded_and_come_as_an_array() -> None:
    model = _model(_identity_logits())
    x = torch.tensor([[[[0.0, 0.0, 20.0]]], [[[1.0, 2.0, 3.0]]]])
    result = predict(model, x, top_k=3)
    expected = torch.softmax(x.flatten(1), dim=1).numpy()
    assert result.probabilities.shape == (2, 3) and result.probabilities.dtype == np.float32
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-6)
    tiny = result.predictions[0].probs[0]
    assert 0 < tiny < 1e-8  # e^-20 / (2 e^-20 + 1): kept, not rounded to 0.0
    assert json.loads(json.dumps(result.to_dict()))["predictions"][0]["probs"][0] == tiny


def test_asked_classes_use_the_one_class_grammar() -> None:
    from convscope.errors import ConvscopeError

    model = _model(_identity_logits())
    x = torch.tensor([[[[1.0, 2.0, 3.0]]]])
    result = predict(model, x, classes="c,0-1")
    expected = torch.softmax(torch.tensor([1.0, 2.0, 3.0]), dim=0).numpy()
    chosen = result.predictions[0].chosen
    assert [name for name, _ in chosen] == ["c", "a", "b"]
    np.testing.assert_allclose([p for _, p in chosen], expected[[2, 0, 1]], rtol=1e-6)
    assert result.to_dict()["predictions"][0]["classes"][0][0] == "c"
    with pytest.raises(ConvscopeError, match="unknown class 'z'; the classes are 0 a, 1 b, 2 c"):
        predict(model, x, classes="z")
