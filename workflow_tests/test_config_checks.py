"""mrixai.config.check_config: the shipped configs pass, and each cross-check fires on a malformed
config with a message naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from mrixai.config import check_config

REPO = Path(__file__).resolve().parents[1]


def _merge(base, extra):
    """``extra`` layered over ``base`` as --configfile does, except that label.groups is replaced."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "groups":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize("overlay", [None, *sorted(p.name for p in (REPO / "configs").glob("*.yaml"))])
def test_shipped_configs_pass(config, overlay):
    cfg = config if overlay is None else _merge(config, yaml.safe_load((REPO / "configs" / overlay).read_text()))
    check_config(cfg)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"label": {"groups": {"CN": "diagnosis == 'CN'"}}}, r"label\.groups must name exactly two groups"),
        ({"registration": ["none", "linear"]}, r"studies\.registration \(reg-syn\) trains on arm 'syn'"),
        ({"studies": {"pif": {"arm": "linear"}, "registration": {"arms": ["none", "syn"]}},
          "registration": ["none", "syn"]},
         r"studies\.pif \(model-baseline\) trains on arm 'linear'"),
        ({"studies": {"registration": {"arms": ["syn"]}, "pif": {"enabled": False},
                      "transfer": {"target_arm": "linear"}}, "registration": ["syn"]},
         r"studies\.transfer \(init-scratch\) trains on arm 'linear'"),
        ({"samples": {"subimages": {"arm": "none"}}, "registration": ["linear", "syn"],
          "studies": {"registration": {"arms": ["linear", "syn"]}, "transfer": {"target_arm": "linear"}}},
         r"samples\.subimages\.arm 'none'"),
        ({"baseline": {"gm_arm": "linear"}, "registration": ["syn"],
          "studies": {"registration": {"arms": ["syn"]}, "tissue": {"enabled": False},
                      "transfer": {"target_arm": "syn"}}},
         r"baseline\.gm_arm 'linear'"),
        ({"baseline": {"features": ["volumes"]}, "registration": ["none"],
          "studies": {"registration": {"arms": ["none"]}, "tissue": {"enabled": False},
                      "pif": {"arm": "none"}, "transfer": {"source_arm": "none"}}},
         r"baseline feature set 'volumes' needs the linear or syn"),
        ({"analysis": {"primary_method": "nosuch"}}, r"analysis\.primary_method: \['nosuch'\]"),
        ({"analysis": {"randomisation": {"methods": ["gbp", "nosuch"]}}}, r"analysis\.randomisation\.methods: \['nosuch'\]"),
    ],
)  # fmt: skip
def test_each_check_names_its_key(config, change, message):
    with pytest.raises(ValueError, match=message):
        check_config(_merge(config, change))


def test_a_disabled_study_or_baseline_is_not_checked(config):
    cfg = _merge(config, {"registration": ["none", "linear"], "studies": {
        "registration": {"arms": ["none", "linear"]}, "pif": {"enabled": False},
        "transfer": {"enabled": False}}, "baseline": {"enabled": False}})  # fmt: skip
    check_config(cfg)
