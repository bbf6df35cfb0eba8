"""Config validation: every shipped config passes; each kind of mistake gives one line naming the key."""

from pathlib import Path

import pytest
import yaml

from gold_ray.cli import main
from gold_ray.config import ConfigError, apply_override, load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_validate(path, capsys):
    assert main(["validate", str(path)]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["task"]["name"] == path.stem


def test_every_task_kind_is_shipped():
    kinds = {load_config(p).task.kind for p in CONFIGS}
    assert kinds == {"classification", "extractive_qa", "math"}


def write(tmp_path, mutate):
    data = yaml.safe_load(Path(__file__).resolve().parents[1].joinpath("configs/sst2.yaml").read_text())
    mutate(data)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_validate(path, capsys, *extra):
    code = main(["validate", str(path), *extra])
    err = capsys.readouterr().err.strip()
    return code, err


def test_misspelt_key_names_path_and_suggestion(tmp_path, capsys):
    path = write(tmp_path, lambda d: d["generation"].update(trian_per_round=3))
    code, err = run_validate(path, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "generation.trian_per_round" in err and "'train_per_round'" in err


def test_wrong_type(tmp_path, capsys):
    path = write(tmp_path, lambda d: d["run"].update(rounds="many"))
    code, err = run_validate(path, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "run.rounds" in err and "integer" in err and "'many'" in err


def test_empty_label_set(tmp_path, capsys):
    def mutate(d):
        d["task"]["labels"] = []

    code, err = run_validate(write(tmp_path, mutate), capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "task.labels" in err and "at least 2 labels" in err


def test_duplicated_label(tmp_path, capsys):
    def mutate(d):
        d["task"]["labels"].append({"name": "positive", "description": "again"})

    code, err = run_validate(write(tmp_path, mutate), capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "task.labels" in err and "unique" in err and "positive" in err


def test_negative_budget(tmp_path, capsys):
    path = write(tmp_path, lambda d: d["generation"].update(train_per_round=-5))
    code, err = run_validate(path, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "generation.train_per_round" in err and "greater than or equal to 1" in err


def test_duplicate_yaml_key_is_refused(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text("task: {}\nrun:\n  rounds: 2\n  rounds: 3\n")
    code, err = run_validate(path, capsys)
    assert code == 2 and "duplicate key 'rounds'" in err


def test_example_with_unknown_label(tmp_path, capsys):
    path = write(tmp_path, lambda d: d["task"]["examples"].append({"text": "fine film", "label": "neutral"}))
    code, err = run_validate(path, capsys)
    assert code == 2 and "task.examples[6].label" in err and "neutral" in err


def test_band_cross_field_rule(tmp_path, capsys):
    code, err = run_validate(CONFIGS[0], capsys, "--set", "feedback.band=[0.9, 0.2]")
    assert code == 2 and "feedback.band" in err and "low < high" in err
    code, err = run_validate(CONFIGS[0], capsys, "--set", "feedback.max_words=3")
    assert code == 2 and "max_words (3) is below min_words (5)" in err


def test_diversity_seeds_by_label_must_name_the_labels(capsys):
    sst2 = ROOT / "configs/sst2.yaml"
    config = load_config(sst2, ["generation.diversity_seeds={negative: [plot], positive: [acting, music]}"])
    assert config.generation.diversity_seeds == {"negative": ["plot"], "positive": ["acting", "music"]}
    code, err = run_validate(sst2, capsys, "--set", "generation.diversity_seeds={negative: [plot], postive: [a]}")
    assert code == 2 and "diversity_seeds" in err and "missing: ['positive']" in err and "unknown: ['postive']" in err
    squad = ROOT / "configs/squad.yaml"
    code, err = run_validate(squad, capsys, "--set", "generation.diversity_seeds={a: [b]}")
    assert code == 2 and "needs a classification task" in err
    with pytest.raises(ConfigError) as info:  # neither branch of the union: named at the key, both types listed
        load_config(sst2, ["generation.diversity_seeds=[1, {a: b}]"])
    assert str(info.value) == ("generation.diversity_seeds: expected one of list[str], dict[str,list[str]] "
                               "(got [1, {'a': 'b'}])")


def test_overrides_are_typed_and_validated(capsys):
    sst2 = [p for p in CONFIGS if p.stem == "sst2"][0]
    config = load_config(sst2, ["run.rounds=2", "training.learning_rate=1e-4", "task.labels.0.description=bad"])
    assert config.run.rounds == 2 and config.training.learning_rate == pytest.approx(1e-4)
    assert config.task.labels[0].description == "bad"
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_override({}, "run.rounds")
    # a key below a list's plain item: named, not a TypeError (found by test_config_fuzz)
    with pytest.raises(ConfigError, match="feedback.band.0 is a value, not a section"):
        apply_override({"feedback": {"band": [0.5, 0.8]}}, "feedback.band.0.task=null")


def test_missing_file_and_bad_yaml(tmp_path, capsys):
    code, err = run_validate(tmp_path / "nope.yaml", capsys)
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n")
    code, err = run_validate(bad, capsys)
    assert code == 2 and "not valid YAML" in err and len(err.splitlines()) == 1


def test_output_schema_of_each_kind():
    by_kind = {load_config(p).task.kind: load_config(p).task for p in CONFIGS}
    cls = by_kind["classification"].output_schema()
    assert cls["properties"]["label"]["enum"] and cls["additionalProperties"] is False
    assert by_kind["extractive_qa"].output_schema()["required"] == ["context", "question", "answer"]
    assert by_kind["math"].output_schema()["properties"]["answer"] == {"type": "number"}


def test_eval_path_is_relative_to_config():
    config = load_config([p for p in CONFIGS if p.stem == "sst2"][0])
    assert config.eval_path().name == "validation.jsonl"
    assert config.eval_path().is_absolute()


def test_union_key_error_names_the_types_it_takes():
    with pytest.raises(ConfigError) as info:
        load_config(ROOT / "configs/sst2.yaml", ["generator.omp_threads_bind=[[1]]"])
    assert str(info.value) == "generator.omp_threads_bind: expected one of str, list[str] (got [[1]])"
    cfg = load_config(ROOT / "configs/sst2.yaml", ["generator.omp_threads_bind=[0, 1]"])  # YAML numbers as masks
    assert cfg.generator.omp_threads_bind == ["0", "1"]
