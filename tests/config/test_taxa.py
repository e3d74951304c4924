"""The embedded taxonomy set's section: its sizes, and bad settings refused with one line."""

import dataclasses

import pytest

from frx import presets
from frx.config import ConfigError, TaxaConfig, validate


def test_sizes_follow_the_branching():
    taxa = TaxaConfig(branching=(2, 3, 1, 1, 2, 2, 5))
    assert (taxa.num_species, taxa.num_families) == (120, 12)


@pytest.mark.parametrize("changes, message", [
    (dict(branching=(2, 2)), "data.taxa.branching needs 7 values"),
    (dict(branching=(5, 2, 2, 2, 2, 2, 2)), "data.taxa.branching\\[0\\] must lie in 1..4"),
    (dict(branching=(2, 2, 2, 2, 2, 2, 13)), "data.taxa.branching\\[6\\] must lie in 1..12"),
    (dict(zipf_exponent=-1.0), "data.taxa.zipf_exponent must be >= 0"),
    (dict(missing_fraction=1.0), "data.taxa.missing_fraction must lie in \\[0, 1\\)"),
    (dict(train_size=0), "data.taxa.train_size must be >= 1"),
])
def test_bad_taxa_settings_give_one_line_errors(changes, message):
    cfg = presets.get("extreme_demo")
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, taxa=dataclasses.replace(cfg.data.taxa, **changes)))
    with pytest.raises(ConfigError, match=message) as info:
        validate(cfg)
    assert "\n" not in str(info.value)
