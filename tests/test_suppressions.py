"""Suppressions are keyed by where they are written (file, line), not by layer (issue 18):
a comment on a line with several calls counts as used when any layer on that line matched,
and a module called twice reports a stale suppression once."""

from __future__ import annotations

import pytest

import archlint
import archlint.config

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


class TwoCallsOnALine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x) + 1.0)  # archlint: ignore[AL201]


class CalledTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)  # archlint: ignore[AL103]

    def forward(self, x):
        return self.conv(self.conv(x))


def test_suppression_on_a_line_with_several_calls_is_used():
    """The add and the relu both come from the forward line. AL201 fires on the relu (the last
    spatial layer: field 3x3 on 64x64, 5%) and is suppressed there; the add has no AL201 of its
    own. Before: AL001 on the add, "suppression of AL201 ... matches no finding"."""
    report = archlint.analyze(TwoCallsOnALine(), input_shape=(1, 3, 64, 64))
    unsuppressed = archlint.analyze(TwoCallsOnALine(), input_shape=(1, 3, 64, 64),
                                    lint=archlint.config.from_dict({"select": ["AL201"]}))
    assert [f.code for f in unsuppressed.findings] == []  # the comment suppresses it...
    assert [f.code for f in report.findings] == []        # ...and is not reported as unused


def test_module_called_twice_reports_a_stale_suppression_once():
    """Both calls of self.conv (layers conv and conv_1) come from one construction line whose
    AL103 suppression matches nothing (3x3 kernels): one AL001, not two."""
    report = archlint.analyze(CalledTwice(), input_shape=(1, 8, 16, 16))
    unused = [f for f in report.findings if f.code == "AL001"]
    assert len(unused) == 1 and "AL103" in unused[0].message and unused[0].layer == "conv"


def test_al201_needs_a_spatial_model():
    """Issue 17 item 12: a plain [3, 4, 5] tensor through a sigmoid has no sliding window, so no
    receptive field to judge (before: "receptive field 1 covers 20% of the 5 input"). The same
    input through a 3-tap conv (field 3 of 5 = 60%) and a 1-tap one (20%): only the latter fires."""
    assert [f.code for f in archlint.analyze(nn.Sequential(nn.Sigmoid()), input_shape=(3, 4, 5)).findings] == []
    narrow = archlint.analyze(nn.Sequential(nn.Conv1d(4, 4, 1), nn.Sigmoid()), input_shape=(3, 4, 5))
    assert [f.code for f in narrow.findings if f.code == "AL201"] == ["AL201"]
    wide = archlint.analyze(nn.Sequential(nn.Conv1d(4, 4, 3, padding=1), nn.Sigmoid()), input_shape=(3, 4, 5))
    assert [f.code for f in wide.findings if f.code == "AL201"] == []
