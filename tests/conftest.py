"""Shared fixtures: the digits data split and one trained digits MLP per session
(training it costs about a second; several test modules need it)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_split():
    """((x_train, y_train), (x_test, y_test)): the fixed 80/20 split of make_mlp_digits."""
    from cosim.twin.sweep import split
    from cosim.core.seeds import EXAMPLE_SEED
    from cosim.nets.examples import digits_data

    return split(*digits_data(), EXAMPLE_SEED)


@pytest.fixture(scope="session")
def digits_mlp():
    """The 64-100-10 Abs MLP trained for 80 epochs (test accuracy ~0.97). Tests must not change it."""
    from cosim.nets.examples import make_mlp_digits

    model, _ = make_mlp_digits(epochs=80)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
