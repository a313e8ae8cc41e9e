"""`RecoveryConfig`: validation (one-line `ConfigError`s), derived budget, round trip, documented fields."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from optimum_dpruner import ConfigError, RecoveryConfig


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"learning_rate": 0.0}, "learning_rate=0.0 must be a finite number > 0"),
        ({"learning_rate": -1e-4}, "learning_rate=-0.0001 must be a finite number > 0"),
        ({"learning_rate": math.nan}, "learning_rate=nan must be a finite number > 0"),
        ({"learning_rate": math.inf}, "learning_rate=inf must be a finite number > 0"),
        ({"mode": "qlora"}, "mode='qlora' is unknown"),
        ({"max_steps": 4, "max_tokens": 100}, "both set the budget"),
        ({"max_steps": 0}, "max_steps=0 must be a positive integer"),
        ({"domain_share": 1.5}, "domain_share=1.5 must be a number in"),
        ({"distill_weight": -0.1}, "distill_weight=-0.1 must be a number in"),
        ({"batch_size": 3, "gradient_accumulation_steps": 2}, "batch_size=3 is not a multiple"),
        ({"lr_scheduler_type": "cosnie"}, "lr_scheduler_type='cosnie' is unknown"),
        ({"seq_len": 1}, "seq_len=1 must be at least 2"),
        ({"lora_dropout": 1.0}, "lora_dropout=1.0 must be a number in"),
    ],
    ids=["lr-zero", "lr-negative", "lr-nan", "lr-inf", "mode", "two-budgets", "steps-zero", "share", "distill",
         "batch-accumulation", "scheduler", "seq-len", "dropout"],
)
def test_bad_values_are_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        RecoveryConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_budget_in_steps_or_tokens():
    assert RecoveryConfig().steps == 192
    assert RecoveryConfig(max_steps=10, batch_size=2, seq_len=32).tokens == 640
    assert RecoveryConfig(max_tokens=1000, batch_size=2, seq_len=32).steps == 16  # ceil(1000 / 64)
    assert RecoveryConfig(batch_size=4, gradient_accumulation_steps=2).per_device_batch_size(2) == 1
    with pytest.raises(ConfigError, match="cannot be split over 3 process"):
        RecoveryConfig(batch_size=4).per_device_batch_size(3)


def test_round_trip_and_unknown_keys():
    config = RecoveryConfig(mode="lora", lora_r=4, lora_targets=["*.mlp.*"], distill_weight=0.5)
    assert RecoveryConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        RecoveryConfig.from_dict({"learning_rte": 1e-3})


def test_every_field_has_help_and_a_docstring_entry():
    documented = set(re.findall(r"^        (\w+) \(`", RecoveryConfig.__doc__, re.M))
    fields = {f.name for f in dataclasses.fields(RecoveryConfig)}
    assert documented == fields
    assert all(RecoveryConfig.field_help().values())
