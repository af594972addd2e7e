"""Tests for model FLOP counts and peak FLOP/s lookup."""

import pytest

from core.config import PROD, TEST
from core.flops import (
    matmul_params,
    measure_matmul_flops,
    mfu,
    peak_flops,
    training_flops_per_step,
    training_flops_per_token,
)
from core.model import count_params


def test_matmul_params_are_all_params_but_the_norms():
    for config in (TEST, PROD):
        norms = config.num_layers * 2 * config.hidden_dim + config.hidden_dim
        assert matmul_params(config) == count_params(config) - norms


def test_flops_per_token_is_six_n_plus_causal_attention():
    attention = 6 * 6 * 4 * 64 * 512
    assert training_flops_per_token(TEST, 512) == 6 * matmul_params(TEST) + attention
    assert training_flops_per_step(TEST, 8, 512) == 8 * 512 * training_flops_per_token(TEST, 512)


def test_cpu_peak_is_a_measured_positive_rate():
    assert 1e8 < measure_matmul_flops(size=256, repeats=3) < 1e14
    assert peak_flops() > 0


def test_mfu_is_achieved_over_peak():
    assert mfu(flops_per_step=2e12, step_seconds=2.0, peak=4e12) == pytest.approx(0.25)
