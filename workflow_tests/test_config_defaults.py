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
