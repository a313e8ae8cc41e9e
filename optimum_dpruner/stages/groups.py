"""Input groups: the target linears of a block that read the same input tensor share one statistic.

In LLaMA-style blocks q/k/v read the normed hidden states and gate/up the normed residual, so they have the same
Hessian (and the same input norms). The groups are found from the hooks, never from module names: during the
block's first calibration window every target linear's input is recorded, and linears called once with the very
same tensor object form a group. Their inputs are then fed to one statistic per group, in the order the unshared
code would have fed them, and from the second window on only the group's first linear feeds it (the others'
hooks check that they still receive the same tensor).

A linear called more than once per window, or that first runs after the first window (an expert that the first
window did not route to), gets a statistic of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import UnsupportedModelError
from ..runtime.timers import StageTimer

__all__ = ["InputGroup", "SharedStatistics"]


@dataclass
class InputGroup:
    """Target linears (names, in call order) that read one input, and their statistic."""

    members: list[str]
    statistic: Any
    current: torch.Tensor | None = field(default=None, repr=False)  # the input of this window, while it runs


class SharedStatistics:
    """Feeds one statistic per input group from the block's forward hooks (see module doc).

    Args:
        in_features (`dict[str, int]`): the block's target linears (in block order) and their input sizes.
        make_statistic (`Callable[[int], Any]`): builds a statistic for `d_in` input features.
        timer (`StageTimer`, *optional*): receives the seconds spent updating statistics (`statistics`).
    """

    def __init__(
        self, in_features: dict[str, int], make_statistic: Callable[[int], Any], timer: StageTimer | None = None
    ) -> None:
        self.in_features = in_features
        self.make_statistic = make_statistic
        self.timer = timer or StageTimer()
        self.weight = 0.0  # per-token weight of the current window
        self._discovering = True
        self._first_calls: list[tuple[str, torch.Tensor]] = []
        self._group_of: dict[str, InputGroup] = {}
        self._groups: list[InputGroup] = []

    def _add(self, group: InputGroup, x: torch.Tensor, weight: float) -> None:
        with self.timer("statistics", sync=False):
            group.statistic.add_batch(x, weight)

    def _new_group(self, name: str) -> InputGroup:
        group = InputGroup([name], self.make_statistic(self.in_features[name]))
        self._groups.append(group)
        self._group_of[name] = group
        return group

    def record(self, name: str, x: torch.Tensor) -> None:
        """Forward-hook body: `x` is the input of target linear `name` in the current window."""
        if self._discovering:
            self._first_calls.append((name, x))
            return
        group = self._group_of.get(name) or self._new_group(name)
        if group.members[0] == name:
            group.current = x
            self._add(group, x, self.weight)
        elif x is not group.current:
            raise UnsupportedModelError(
                f"{name} read the same input as {group.members[0]} in the first calibration window but not in a "
                "later one; the block's forward pass changes between windows."
            )

    def end_window(self) -> None:
        """Call after each calibration window's block forward."""
        if self._discovering:
            self._discovering = False
            calls = self._first_calls
            self._first_calls = []
            counts: dict[str, int] = {}
            for name, _ in calls:
                counts[name] = counts.get(name, 0) + 1
            firsts: list[tuple[torch.Tensor, InputGroup]] = []  # the input each shareable group was built on
            for name, x in calls:
                if name in self._group_of:  # a linear called again in this window: its own statistic
                    self._add(self._group_of[name], x, self.weight)
                    continue
                shared = next((g for t, g in firsts if t is x), None) if counts[name] == 1 else None
                if shared is not None:
                    shared.members.append(name)
                    self._group_of[name] = shared
                    continue
                group = self._new_group(name)
                if counts[name] == 1:
                    firsts.append((x, group))
                self._add(group, x, self.weight)
        for group in self._groups:
            group.current = None

    def groups(self) -> list[InputGroup]:
        """Every target linear in exactly one group, in block order; a linear that never ran gets an empty
        statistic of its own (a method that needs data then raises)."""
        for name in self.in_features:
            if name not in self._group_of:
                self._new_group(name)
        order = {name: i for i, name in enumerate(self.in_features)}
        return sorted(self._groups, key=lambda g: order[g.members[0]])
