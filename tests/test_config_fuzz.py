"""Config fuzzing: whatever the YAML holds, `gold-ray validate` answers 0 or 2, never a traceback."""

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gold_ray.cli import main
from gold_ray.config import ConfigError, apply_override, validate_config

SST2 = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "sst2.yaml").read_text())
KEYS = ["task", "run", "rounds", "labels", "name", "band", "k", "generation", "train_per_round", "examples", "x"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
                      max_leaves=12)
paths = st.lists(st.sampled_from(KEYS + ["0", "1", "feedback", "training", "sce_alpha"]), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_random_trees_give_config_errors_only(data):
    try:
        validate_config(data)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=150, deadline=None)
@given(path=paths, value=values)
def test_random_overrides_of_a_real_config(path, value):
    data = yaml.safe_load(yaml.safe_dump(SST2))
    try:
        apply_override(data, f"{'.'.join(path)}={yaml.safe_dump(value, default_flow_style=True).strip()}")
        validate_config(data)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_random_files_through_the_cli(text, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("gold-ray: error:") and len(err.strip().splitlines()) == 1
