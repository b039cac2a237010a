"""A hidden check's message names every place that fails it, not only the first (issue 22, point 5: BatchNorm
after the ReLU in both convs was reported for conv1 only, and a second grading round found conv2), within the
300 characters a student sees.

The helpers of ``autograder/expectations.py`` are checked in this process; one submission carrying a mistake in
several places of several parts is graded end to end (one grading, seconds), and its failed checks are exactly
those the same mistakes failed before the messages changed: only the messages differ.
"""
from __future__ import annotations

import re

import pytest
import torch

from autograder import expectations, results
from autograder.expectations import MESSAGE_CHARS, SIMPLENN_CONVS, SIMPLENN_LINEARS, listed, listing
from autograder.grade import grade_submission
from fixtures.corpus import build_submission

_L1_SUM = "sum(p.abs().sum() for p in model.parameters() if p.requires_grad)"

# (notebook, the text that picks the cell, [(old, new), ...]): each mistake made in several places
MISTAKES = (
    ("simplenn", "class SimpleNN(nn.Module)", [
        ("nn.Conv2d(8, 16, kernel_size=3)", "nn.Conv2d(8, 16, kernel_size=5)"),
        ("nn.Linear(16 * 6 * 6, 120)", "nn.Linear(16 * 5 * 5, 100)"), ("nn.Linear(120, 84)", "nn.Linear(100, 84)"),
        ("x = self.pool(F.relu(self.conv1(x)))", "x = self.pool(self.conv1(x))")]),
    ("simplenn_dev", "class SimpleNNBN(nn.Module)", [   # the case: BatchNorm after the ReLU in both convs
        ("x = self.pool(F.relu(self.bn1(self.conv1(x))))", "x = self.pool(self.bn1(F.relu(self.conv1(x))))"),
        ("x = self.pool(F.relu(self.bn2(self.conv2(x))))", "x = self.pool(self.bn2(F.relu(self.conv2(x))))")]),
    ("simplenn_dev", "class Swish(nn.Module)", [
        ("return x * torch.sigmoid(x)", "return F.silu(x) * 1.01 + 0 * nn.SiLU()(x)")]),
    ("simplenn_dev", "class SimpleNNSwish(nn.Module)", [
        ("x = self.act(self.fc1(x))", "x = F.relu(self.fc1(x))"),
        ("x = self.act(self.fc2(x))", "x = F.relu(self.fc2(x))"),
        ("x = self.pool(self.act(self.bn1(self.conv1(x))))", "x = self.pool(self.act(self.conv1(x)))")]),
    ("simplenn_dev", "def l1_penalty(model, strength)", [
        (_L1_SUM, "sum(p.pow(2).sum() for p in model.parameters() if p.requires_grad)")]),
)

# check -> texts its message must hold (every failing place); the keys are every check these mistakes fail
EXPECTED = {
    "simplenn: SimpleNN has exactly 82,030 trainable parameters": [],
    "simplenn: Its layers are conv 5x5 3->8 and conv 3x3 8->16 (stride 1, no padding), then Linear 576->120->84->10":
        ["got conv2 8->16 5x5, fc1 400->100 and fc2 100->84"],
    "simplenn: The first Linear receives 16 x 6 x 6 = 576 features per image (two 2x2 pools after the convs)": [],
    "simplenn: A ReLU follows conv1: conv2 never receives a negative value": [],
    "simplenn_bn: Each conv's output goes straight into a BatchNorm2d of its width (BatchNorm2d(8), BatchNorm2d(16))":
        ["got none after conv1 (3->8) and conv2 (8->16)"],
    "swish: Swish(x) equals x * sigmoid(x)": ["expected Swish(x) = x * sigmoid(x): at x = ", "more of the 1000 inputs"],
    "swish: The gradient of Swish is sigmoid(x) * (1 + x * (1 - sigmoid(x)))": ["more of the 1000 inputs"],
    "swish: Extreme inputs (+-1e4, +-100, +-88) give finite values: x for large x, 0 for very negative x":
        ["at x = 10000 expected 10000, got 10100; at x = 100 expected 100, got 101"],
    "swish: Swish does not call nn.SiLU, F.silu or torch.silu (the handout asks for it written by hand)":
        ["got 2 silu calls and SiLU in its source (line ", ": F.silu and line ", ": nn.SiLU)"],
    "swish: SimpleNNSwish keeps SimpleNNBN's BatchNorm2d right after each conv": ["got none after conv1 (3->8)"],
    "swish: SimpleNNSwish uses no ReLU (no nn.ReLU, F.relu, torch.relu or x.relu())": ["got ReLUs after fc1 and fc2"],
    "swish: SimpleNNSwish applies your Swish 4 times per forward, where SimpleNN had its 4 ReLUs":
        ["got 2, none after fc1 and fc2"],
    "l1: l1_penalty is strength * sum |p| (a Linear layer with weights set by hand)": [],
    "l1: The penalty is differentiable: its gradient is strength * sign(p) for every parameter":
        ["got a wrong one for 0.weight, 2.weight and 2.bias (0.weight: [1, -2, 3, -4, 5, -6] instead of "
         "[0.5, -0.5, 0.5, -0.5, 0.5, -0.5])"],
    "l1: A small strength (1e-4) on a small conv net gives 1e-4 * sum |p|": [],
}


def _message(f, *args) -> str | None:
    try:
        f(*args)
    except (AssertionError, pytest.fail.Exception) as error:
        return str(error)
    return None


def test_the_cap_is_the_one_results_applies():
    assert expectations.MESSAGE_CHARS == results.MESSAGE_CHARS


def test_listing_names_every_item_or_counts_those_that_do_not_fit():
    assert [listing(items, 99) for items in (["a"], ["a", "b"], ["a", "b", "c"])] == ["a", "a and b", "a, b and c"]
    assert listing([f"conv{i}" for i in range(1, 30)], 31) == "conv1, conv2, conv3 and 26 more"
    assert listing(list("abcdef"), 99, at_most=3) == "a, b, c and 3 more"
    assert listing(["a very long first item"], 5) == "a very long first item"   # one is always named
    message = listed("expected every conv's output to go straight into a BatchNorm2d, got none after ",
                     [f"conv{i} (16->16)" for i in range(1, 200)], " (read the handout)")
    assert len(message) <= MESSAGE_CHARS and message.endswith("more (read the handout)")


def test_simplenn_layers_message_names_every_wrong_layer_convs_and_linears():
    assert _message(expectations.assert_simplenn_layers, SIMPLENN_CONVS, SIMPLENN_LINEARS) is None
    convs = [(3, 8, (5, 5), (1, 1), (2, 2)), (8, 16, (5, 5), (2, 2), (0, 0)), (16, 32, (3, 3), (1, 1), "same")]
    message = _message(expectations.assert_simplenn_layers, convs, [(784, 120), (120, 84)])
    assert message.startswith("expected convs 3->8 5x5 and 8->16 3x3 (stride 1, no padding), then Linear "
                              "576->120->84->10, got ")
    assert message.endswith("got conv1 3->8 5x5 padding 2, conv2 8->16 5x5 stride 2, an extra conv3 16->32 3x3 "
                            "padding 'same', fc1 784->120 and no fc3")
    many = _message(expectations.assert_simplenn_layers, [(3, 8, (7, 7), (2, 2), "same")] * 60, [])
    assert len(many) <= MESSAGE_CHARS and many.endswith("more")


def test_swish_value_messages_name_the_worst_few_and_count_the_others():
    x = torch.arange(-50, 51, dtype=torch.float32) / 10
    wrong = x * torch.sigmoid(x)
    wrong[[10, 50, 90]] += torch.tensor([1.0, 3.0, 2.0])   # at x = -4, 0 and 4
    message = _message(expectations.assert_swish_values, wrong, x)
    assert message.startswith("expected Swish(x) = x * sigmoid(x): at x = 0 expected 0, got 3; at x = 4 expected ")
    assert re.findall(r"at x = (\S+) expected", message) == ["0", "4", "-4"] and "; and at x = -4 " in message
    message = _message(expectations.assert_swish_values, torch.sigmoid(x), x)
    assert message.endswith("; and at 97 more of the 101 inputs") and message.count(" at x = ") == 3
    assert len(message) <= MESSAGE_CHARS


def test_a_mistake_in_several_places_is_named_in_every_place(tmp_path):
    def edit(key, nb):
        for notebook, selector, replacements in MISTAKES:
            if notebook == key:
                (cell,) = [c for c in nb.cells if c.cell_type == "code" and selector in c.source]
                for old, new in replacements:
                    assert cell.source.count(old) == 1, old
                    cell.source = cell.source.replace(old, new)

    submission = build_submission(tmp_path / "submission", edit=edit, omit=["resnet"])
    result = grade_submission(submission, tmp_path / "out", None, "cpu").to_gradescope()
    failed = {t["name"]: t["output"] for t in result["tests"] if t["status"] != "passed"
              and t["tags"][0] in EXPECTED_PARTS and not t["name"].endswith(results.TOTAL_SUFFIX)}
    assert sorted(failed) == sorted(EXPECTED), "the same checks fail as before the messages named every place"
    messages = {name: output.split(": ", 1)[1] for name, output in failed.items()}   # after "-0.75 of 3 points: "
    too_long = [message for message in messages.values() if len(message) > MESSAGE_CHARS or message.endswith("...")]
    assert not too_long
    unnamed = {name: messages[name] for name, texts in EXPECTED.items() if not all(t in messages[name] for t in texts)}
    assert not unnamed, "these messages miss a place that fails the check"


EXPECTED_PARTS = {name.split(": ", 1)[0] for name in EXPECTED}
