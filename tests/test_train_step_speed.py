"""The training-step benchmark (`benchmarks.train_step_speed`): variants and batches it times."""

from __future__ import annotations

import pytest

from benchmarks.train_step_speed import parse_variant, step_ms


def test_variants_are_presets_or_json_objects_with_a_name():
    assert parse_variant("transformer_small") == {"preset": "transformer_small", "name": "transformer_small"}
    variant = parse_variant('{"name": "edge", "preset": "transformer_small", "attention": "edge"}')
    assert variant == {"name": "edge", "preset": "transformer_small", "attention": "edge"}


def test_a_step_of_each_extra_batch_and_network_option_is_timed():
    """The fcc Cu batch (stress included) and a network option reach the model: real, positive timings."""
    median_ms, first_s = step_ms("Cu32", threads=1, steps=1,
                                 variant={"preset": "transformer_small", "dim": 16, "heads": 2, "num_layers": 1,
                                          "attention": "edge", "edge_dim": 8})
    assert median_ms > 0 and first_s > 0
    with pytest.raises(ValueError, match="attention must be"):  # the options reach the network
        step_ms("aspirin", threads=1, steps=1, variant={"preset": "transformer_small", "attention": "everything"})
