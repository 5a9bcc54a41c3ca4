"""One source of defaults: a schema default never disagrees with config.yaml, which holds every value."""

from __future__ import annotations

import yaml

from conftest import REPO

SCHEMA = REPO / "src" / "mrixai" / "schemas" / "config.schema.yaml"


def _schema_defaults(node: dict, path: tuple = ()):
    """(path, default) of every property with a default, depth first."""
    for key, sub in (node.get("properties") or {}).items():
        here = (*path, key)
        if "default" in sub:
            yield here, sub["default"]
        if "properties" in sub:
            yield from _schema_defaults(sub, here)


def _lookup(config: dict, path: tuple):
    node = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise KeyError(".".join(path))
        node = node[key]
    return node


def test_every_schema_default_equals_config_yaml():
    schema = yaml.safe_load(SCHEMA.read_text())
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    disagree, missing = [], []
    for path, default in _schema_defaults(schema):
        try:
            value = _lookup(config, path)
        except KeyError:
            # an optional per-study override block may be absent from config.yaml (empty: no override)
            if default != {}:
                missing.append(".".join(path))
            continue
        if default != value and default != {}:
            disagree.append(f"{'.'.join(path)}: schema {default!r}, config.yaml {value!r}")
    assert missing == [], f"schema defaults of keys config.yaml lacks: {missing}"
    assert disagree == [], "schema defaults disagree with config.yaml:\n" + "\n".join(disagree)


def test_the_check_finds_a_disagreement():
    # the walk reaches nested keys: a planted disagreement in a nested block is seen
    schema = {"properties": {"a": {"properties": {"b": {"default": 1}}}}}
    assert list(_schema_defaults(schema)) == [(("a", "b"), 1)]
    assert _lookup({"a": {"b": 2}}, ("a", "b")) == 2


def _layered(base: dict, extra: dict) -> dict:
    """``extra`` merged over ``base`` key by key, as stacked ``--configfile`` files are."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = _layered(dict(out.get(key) or {}), value) if isinstance(value, dict) else value
    return out


def test_every_shipped_config_layer_passes_the_schema_over_config_yaml():
    """configs/*.yaml (tiny, development, paper, ...) are run layered over config.yaml; each result is
    a valid config, and a misspelt key in a layer is caught the same way."""
    import pytest
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    base = yaml.safe_load((REPO / "config.yaml").read_text())
    layers = sorted((REPO / "configs").glob("*.yaml"))
    assert "tiny.yaml" in {p.name for p in layers}, "the end-to-end tests' configuration must ship in configs/"
    for layer in layers:
        validate(_layered(base, yaml.safe_load(layer.read_text())), str(SCHEMA))
    with pytest.raises(WorkflowError):
        validate(_layered(base, {"synthetic": {"n_subject": 8}}), str(SCHEMA))


def _config_yaml() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_training_settings_have_no_second_source():
    """TrainConfig carries no default for a setting of config.yaml's training block, and the old
    defaults constants (which disagreed with config.yaml) are gone: config.yaml is the only source."""
    import dataclasses

    from mrixai.learn import options
    from mrixai.learn.train import TrainConfig

    training = _config_yaml()["training"]
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    no_default = {n for n, f in fields.items()
                  if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}  # fmt: skip
    assert set(training) <= no_default, f"TrainConfig defaults for config.yaml keys: {set(training) - no_default}"
    # the only defaults left are for values config.yaml's training block does not hold
    assert set(fields) - no_default == {"model_options", "freeze_blocks"}
    # freeze_blocks (set by the transfer study when fine-tuning) defaults to config.yaml's value
    assert fields["freeze_blocks"].default == _config_yaml()["studies"]["transfer"]["freeze_blocks"]
    assert not hasattr(options, "TRAINING_DEFAULTS") and not hasattr(options, "STUDY_TRAINING_DEFAULTS")
    # the schema makes every training key required, so a config can only get them from config.yaml
    schema = yaml.safe_load(SCHEMA.read_text())
    assert set(schema["properties"]["training"]["required"]) == set(training)


def test_the_pif_studys_translation_only_training_is_in_config_yaml():
    """Eitel et al. 2021 train both PIF-study variants without sagittal flips; config.yaml says so."""
    from mrixai.learn.options import run_options

    config = _config_yaml()
    assert config["studies"]["pif"]["training"]["flip_p"] == 0.0
    for variant in ("model-baseline", "model-pif"):
        assert run_options(config, "pif", variant)["training"]["flip_p"] == 0.0


def _signature_defaults(function) -> dict:
    import inspect

    return {k: p.default for k, p in inspect.signature(function).parameters.items() if p.default is not p.empty}


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def _entry_point_disagreements(function, options: dict) -> list[str]:
    """Keyword defaults of ``function`` that name a key of ``options`` and differ from its value."""
    return [f"{function.__name__}({k}={v!r}) but config.yaml has {options[k]!r}"
            for k, v in _signature_defaults(function).items() if k in options and not _same(v, options[k])]  # fmt: skip


def test_study_entry_points_keyword_defaults_agree_with_config_yaml():
    """Whoever calls a study's entry point without the workflow gets the shipped config's choices."""
    from mrixai.masking.study import run_masking_study

    config = _config_yaml()
    masking = config["studies"]["masking"]
    assert _entry_point_disagreements(run_masking_study, masking) == []
    # the keywords named after config keys are checked: every option but the switch, the training
    # overrides and the reference labels (read by the workflow's own rule, not by the study)
    workflow_only = ("enabled", "training", "reference_labels")
    assert {k for k in masking if k not in workflow_only} <= set(_signature_defaults(run_masking_study))


def test_the_entry_point_check_sees_a_disagreement():
    def entry(alpha=0.05, k=10, flags=(1, 2)):
        return alpha, k, flags

    assert _entry_point_disagreements(entry, {"alpha": 0.05, "k": 10, "flags": [1, 2]}) == []
    assert len(_entry_point_disagreements(entry, {"alpha": 0.01, "k": 10.0, "flags": [1, 3]})) == 2


def test_study_registry_fallbacks_agree_with_config_yaml():
    """The study registry also serves studies a config does not name (its fallbacks); for the
    studies config.yaml names they give exactly config.yaml's variants, arms and repeats, and every
    such study carries its own `enabled` switch."""
    from mrixai import studies

    config = _config_yaml()
    bare = {"splits": config["splits"]}  # the splits block is always present
    for name, settings in config["studies"].items():
        assert "enabled" in settings, f"studies.{name}.enabled missing from config.yaml"
        assert studies.study_variants(bare, name) == studies.study_variants(config, name), name
        for variant in studies.study_variants(config, name):
            assert studies.variant_arm(bare, name, variant) == studies.variant_arm(config, name, variant), name
