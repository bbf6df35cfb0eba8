"""bench/quality.py's pure parts: a policy's run built from a shared round 0 (its feedback
re-picked by its own policy, accepted by `gold-ray run --resume`), the table and the target checks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from bench_scripts import load

from gold_ray.config import load_config
from gold_ray.rundir import RunDir, read_jsonl, write_json, write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def fake_round0(root: Path) -> Path:
    """A complete round 0 as a run leaves it: 10 validation samples with energies 0..9; the
    student disagrees with the teacher's label on sample 6 (not eligible as feedback)."""
    r00 = root / "rounds" / "r00"
    (r00 / "student").mkdir(parents=True)
    validation = [{"id": f"r00-validation-{i:05d}", "fields": {"text": f"sample {i} of a long enough review"},
                   "label": "positive"} for i in range(10)]
    write_jsonl(r00 / "validation.jsonl", validation)
    train = [{"id": f"r00-train-{i:05d}", "fields": {"text": "t"}, "label": label}
             for i, label in enumerate(["negative", "positive"] * 2)]
    write_jsonl(r00 / "train.jsonl", train)
    # scores in another order than the samples: the re-pick must match them by id. The student
    # has learned 3 of its 4 training samples: a fit of 0.5, just enough to feed back by default
    write_jsonl(r00 / "scores.jsonl", [{"id": s["id"], "kind": "validation", "energy": float(i),
                                        "predicted": "negative" if i == 6 else "positive"}
                                       for i, s in reversed(list(enumerate(validation)))]
                + [{"id": s["id"], "kind": "train", "energy": -1.0, "predicted": s["label"]} for s in train[:3]]
                + [{"id": train[3]["id"], "kind": "train", "energy": -1.0, "predicted": "negative"}])
    write_jsonl(r00 / "feedback.jsonl", validation[:2])
    write_json(r00 / "round.json", {"round": 0, "feedback_ids": [s["id"] for s in validation[:2]]})
    return root


def test_a_policy_run_starts_from_the_shared_round0_with_its_own_feedback(tmp_path):
    quality = load("quality")
    round0 = fake_round0(tmp_path / "round0")
    for policy, expected in (("none", []), ("energy_band", [f"r00-validation-{i:05d}" for i in (5, 7)])):
        out = tmp_path / policy / "run"
        overrides = [f"feedback.policy={policy}", "feedback.band=[0.5, 0.8]", "feedback.k=3", f"run.out_dir={out}"]
        config = load_config(ROOT / "configs/sst2.yaml", overrides)
        quality.start_from_round0(round0, out, config)
        ids = [s["id"] for s in read_jsonl(out / "rounds/r00/feedback.jsonl")]
        assert sorted(ids) == expected
        metrics = json.loads((out / "rounds/r00/round.json").read_text())
        assert metrics["feedback_ids"] == ids and metrics["feedback_eligible"] == 9 and metrics["student_fit"] == 0.5
        assert (out / "student").resolve() == (out / "rounds/r00/student").resolve()
        assert not out.with_name("run.building").exists()
        # what `gold-ray run --resume` checks: the same config, round 1 next
        assert RunDir(out).open(config.to_yaml(), resume=True) == 1
    assert len(read_jsonl(round0 / "rounds/r00/feedback.jsonl")) == 2  # the shared copy is untouched
    # a stricter gate than the student's fit: the energy policy feeds nothing back from this round
    out = tmp_path / "strict" / "run"
    config = load_config(ROOT / "configs/sst2.yaml", ["feedback.min_fit=0.6", f"run.out_dir={out}"])
    quality.start_from_round0(round0, out, config)
    assert read_jsonl(out / "rounds/r00/feedback.jsonl") == []


def test_cells_are_kept_per_config_that_matters_to_them():
    quality = load("quality")

    def key(part, *overrides):
        return quality.fingerprint(quality.config_dict(load_config(ROOT / "configs/sst2.yaml", list(overrides))), part)

    base = {part: key(part) for part in ("round0", "none", "energy_band")}
    # seed, output directory and policy name the directory; round 0 runs one round whatever the budget
    assert key("energy_band", "run.seed=3", "run.out_dir=/elsewhere", "feedback.policy=random") == base["energy_band"]
    assert key("round0", "run.rounds=1") == base["round0"]
    moved = quality.config_dict(load_config(ROOT / "configs/sst2.yaml"))
    moved["base_dir"] = "/another/checkout/configs"
    assert quality.fingerprint(moved, "none") == base["none"]
    # a feedback setting matters only to a policy that feeds back
    changed = {part: key(part, "feedback.min_words=0") for part in base}
    assert changed["energy_band"] != base["energy_band"]
    assert changed["none"] == base["none"] and changed["round0"] == base["round0"]
    # but ood_ask words round 0's OOD prompts, which every policy's round-0 feedback comes from
    asked = {part: key(part, "feedback.ood_ask=hard") for part in base}
    assert asked["round0"] != base["round0"] and asked["energy_band"] != base["energy_band"]
    assert asked["none"] == base["none"]
    # a cap on feedback length matters to a feeding policy; left null it is as if it did not exist
    # (the cells computed before it stay current)
    assert key("energy_band", "feedback.max_words=30") != base["energy_band"]
    assert key("none", "feedback.max_words=30") == base["none"]
    older = quality.config_dict(load_config(ROOT / "configs/sst2.yaml"))
    del older["feedback"]["max_words"]
    assert quality.fingerprint(older, "energy_band") == base["energy_band"]
    # whose energies rank the band matters to GOLD, not to random feedback, which reads none
    ranked = {part: key(part, "feedback.energy_student=round") for part in ("energy_band", "random")}
    assert ranked["energy_band"] != base["energy_band"] and ranked["random"] == key("random")
    assert key("random", "feedback.k=8") != key("random")
    # whose fit and energies feedback reads matter only where the round ends are averaged: without
    # averaging they drop out, so one --set addresses the cells of the last round's student
    unaveraged = key("energy_band", "training.average_rounds=false")
    assert unaveraged != base["energy_band"] and key("energy_band", "feedback.fit_student=judging") != base["energy_band"]
    for setting in ("feedback.fit_student=judging", "feedback.energy_student=round"):
        assert key("energy_band", "training.average_rounds=false", setting) == unaveraged
    # so is the share of prompts carrying feedback, outside the feedback section
    assert key("energy_band", "generation.feedback_share=0.25") != base["energy_band"]
    assert all(key(part, "generation.feedback_share=0.25") == base[part] for part in ("none", "round0"))
    # and so are the feedback's form and count per prompt (round 0 stays shared with the default's)
    for setting in ("generation.feedback_mode=steer", "generation.feedback_per_prompt=4"):
        assert key("energy_band", setting) != base["energy_band"]
        assert all(key(part, setting) == base[part] for part in ("none", "round0"))
    # feedback by label: a new config for a feeding policy; off, the cells from before it stay addressable
    assert key("energy_band", "feedback.by_label=false") != base["energy_band"]
    assert all(key(part, "feedback.by_label=false") == base[part] for part in ("none", "round0"))
    unlabelled = quality.config_dict(load_config(ROOT / "configs/sst2.yaml", ["feedback.by_label=false"]))
    del unlabelled["feedback"]["by_label"]
    assert quality.fingerprint(unlabelled, "energy_band") == key("energy_band", "feedback.by_label=false")
    del older["generation"]["feedback_share"]
    assert all(quality.fingerprint(older, part) == base[part] for part in base)
    # the student-fit gate: off (0) is how the cells before it ran; the default is a new config
    # for a feeding policy and nothing to the others
    ungated = quality.config_dict(load_config(ROOT / "configs/sst2.yaml"))
    del ungated["feedback"]["min_fit"]
    assert quality.fingerprint(ungated, "energy_band") == key("energy_band", "feedback.min_fit=0") != base["energy_band"]
    assert all(key(part, "feedback.min_fit=0") == base[part] for part in ("none", "round0"))
    # the noise filter has no student to act with in round 0, which stays shared; it matters to every policy
    filterless = {part: key(part, "training.noise_filter=0") for part in base}
    assert filterless["round0"] == base["round0"]
    assert filterless["none"] != base["none"] and filterless["energy_band"] != base["energy_band"]
    # anything else matters to all
    assert all(key(part, "training.epochs=3") != base[part] for part in base)
    assert key("none", "run.rounds=2") != base["none"]


def test_the_tables_cells_stay_addressable_under_the_shipped_config():
    """A setting added to the config changes every fingerprint unless NEUTRAL_DEFAULTS holds it at
    its default: the table's recorded cells would silently drop out of the block."""
    quality = load("quality")
    args = argparse.Namespace(rounds=4, train=256, validation=64, set=[])
    for task in ("sst2", "ag_news", "rte"):
        for seed in (0, 1, 2):
            for policy in quality.POLICIES:
                cell_dir, _ = quality.cell_dir(args, task, seed, policy, Path("work"))
                assert quality.recorded(quality.RECORD, cell_dir).is_file(), f"no record of {cell_dir}"


def cell(task, seed, policy, accuracy):
    return {"task": task, "seed": seed, "policy": policy, "computed": "2026-11-30 09:00", "seconds": 10,
            "metrics": {"accuracy": accuracy, "n": 872}}


def test_table_and_checks_report_means_sds_and_the_targets():
    quality = load("quality")
    cells = [cell("sst2", 0, "energy_band", 0.80), cell("sst2", 1, "energy_band", 0.82),
             cell("sst2", 0, "none", 0.76), cell("sst2", 1, "none", 0.78)]
    teachers = {"sst2": {"metrics": {"accuracy": 0.51, "n": 500}, "computed": "2026-11-30 08:00"}}
    lines = quality.table(cells, teachers, seeds_asked=[0, 1, 2])
    assert lines[2].startswith("| sst2 | energy_band | 2 (partial) | 0.8100 | 0.0141 | 0: 0.8000, 1: 0.8200")
    assert lines[3].startswith("| sst2 | none | 2 (partial) | 0.7700 | 0.0141 |")
    assert lines[4].startswith("| sst2 | teacher few-shot | - | 0.5100 |")
    found = "\n".join(quality.checks(cells, teachers))
    assert "SST-2 GOLD >= 0.80: 0.8100 over 2 seed(s): met" in found
    assert "sst2: GOLD - no feedback = +4.0 points (larger seed sd 1.4 points)" in found
    assert "student - teacher few-shot = +30.0 points (target +14): met" in found
    assert "averaged over 1 task(s): +4.0 points (target +3, outside one sd of each task above): met" in found
    found = "\n".join(quality.checks([cell("sst2", 0, "energy_band", 0.70), cell("sst2", 0, "none", 0.72)], {}))
    assert "SST-2 GOLD >= 0.80: 0.7000 over 1 seed(s): missed" in found
    assert "-2.0 points (one seed: no sd)" in found and "missed on the mean" in found
    # random feedback is compared with GOLD, not counted in the target's mean
    found = "\n".join(quality.checks(cells + [cell("sst2", 0, "random", 0.79), cell("sst2", 1, "random", 0.79)], {}))
    assert "sst2: GOLD - random feedback = +2.0 points (larger seed sd 1.4 points)" in found
    assert "averaged over 1 task(s): +4.0 points" in found


def test_docs_block_is_replaced_in_place(tmp_path, monkeypatch):
    quality = load("quality")
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# B\n\n## Quality\n\n{quality.BEGIN}\nold\n{quality.END}\n\n## Next\n")
    monkeypatch.setattr(quality, "DOCS", docs)
    quality.write_docs(["new table"])
    assert docs.read_text() == f"# B\n\n## Quality\n\n{quality.BEGIN}\nnew table\n{quality.END}\n\n## Next\n"


def test_cells_of_other_configs_are_listed_not_tabled(tmp_path):
    quality = load("quality")
    work, record = tmp_path / "work", tmp_path / "record"
    for name, accuracy in (("energy_band-aaaa1111", 0.70), ("energy_band-bbbb2222", 0.66)):
        write_json(work / "sst2" / "seed0" / name / "result.json", cell("sst2", 0, "energy_band", accuracy))
    write_json(record / "sst2" / "seed0" / "energy_band-bbbb2222.json", cell("sst2", 0, "energy_band", 0.66))
    write_json(record / "sst2" / "seed0" / "energy_band-cccc3333.json",
               {**cell("sst2", 0, "energy_band", 0.64), "replays": {"accuracy": [0.70, 0.72]}})
    shown = [{**cell("sst2", 0, "energy_band", 0.70), "config": "aaaa1111"}]
    lines = quality.other_cells(work, record, ["sst2"], shown)
    assert len(lines) == 3  # the title, bbbb2222 once (in both), cccc3333 (in the record only)
    assert "energy_band-bbbb2222" in lines[1] and "0.6600" in lines[1]
    assert "energy_band-cccc3333" in lines[2] and "0.6400" in lines[2] and "its 2 replays' mean 0.7100" in lines[2]
    others = [{**shown[0], "config": key} for key in ("bbbb2222", "cccc3333")]
    assert quality.other_cells(work, record, ["sst2"], [*shown, *others]) == []


def test_finished_cells_are_recorded_and_read_back_from_the_record(tmp_path):
    """--work does not outlive its machine: a finished cell is copied into the record (tracked in
    git), and a cell missing from --work is read back from the record, never recomputed."""
    quality = load("quality")
    work, record = tmp_path / "work", tmp_path / "record"
    parsed = argparse.Namespace(rounds=4, train=256, validation=64, set=[])
    done, key = quality.cell_dir(parsed, "sst2", 0, "none", work)
    write_json(done / "result.json", cell("sst2", 0, "none", 0.71))
    assert quality.finished_cell(done, key, record)["metrics"]["accuracy"] == 0.71
    kept = record / "sst2" / "seed0" / f"none-{key}.json"
    assert json.loads(kept.read_text())["metrics"]["accuracy"] == 0.71
    elsewhere, same_key = quality.cell_dir(parsed, "sst2", 0, "none", tmp_path / "another-machine")
    assert same_key == key and not elsewhere.exists()
    assert quality.finished_cell(elsewhere, key, record) == {**cell("sst2", 0, "none", 0.71), "config": key,
                                                              "resumed": True}
    assert quality.finished_cell(quality.cell_dir(parsed, "sst2", 1, "none", work)[0], key, record) is None


def test_finished_only_tables_what_exists_and_runs_nothing(tmp_path, monkeypatch, capsys):
    quality = load("quality")
    monkeypatch.setattr(quality.subprocess, "call", lambda *a, **k: pytest.fail(f"--finished-only ran {a}"))
    args = ["--tasks", "sst2", "rte", "--seeds", "0", "1", "--policies", "energy_band", "none", "--work", str(tmp_path),
            "--record", str(tmp_path / "record")]
    parsed = argparse.Namespace(rounds=4, train=256, validation=64, set=[])
    done, _ = quality.cell_dir(parsed, "sst2", 1, "none", tmp_path)
    write_json(done / "result.json", cell("sst2", 1, "none", 0.71))
    write_json(tmp_path / "sst2" / "teacher.json", {"metrics": {"accuracy": 0.52, "n": 500}, "computed": "2026-11-30"})
    monkeypatch.setattr(sys, "argv", ["quality.py", *args, "--finished-only", "--no-docs"])
    quality.main()
    out = capsys.readouterr().out
    assert "| sst2 | none | 1 (partial) | 0.7100 |" in out and "| sst2 | teacher few-shot | - | 0.5200 |" in out
    assert ("Not run yet (the table is partial without them): sst2 seed 0 energy_band, sst2 seed 0 none, "
            "sst2 seed 1 energy_band, rte teacher few-shot, rte seed 0 energy_band") in out
    assert "0 computed by this invocation" in out


def test_replays_are_computed_once_kept_in_the_record_and_tabled(tmp_path, monkeypatch):
    """--replays K: each cell's data trained again under K training seeds (the training itself is
    data_replay.replay, tested in test_bench_data_replay; here a stand-in scores by seed)."""
    quality = load("quality")
    calls = []
    stand_in = argparse.Namespace(
        trained_rows=lambda run, task, with_validation: [["rows of round 0"]],
        task_eval_rows=lambda config: ["eval rows"],
        replay=lambda config, rounds, rows, seed: calls.append(seed) or (0.70 + seed / 100, 0.5))
    monkeypatch.setattr(quality, "_data_replay", lambda: stand_in)
    work, record = tmp_path / "work", tmp_path / "record"
    cell_path = work / "sst2" / "seed0" / "none-abcd1234"
    (cell_path / "run").mkdir(parents=True)
    (cell_path / "run" / "config.yaml").write_text((ROOT / "configs/sst2.yaml").read_text())
    result = cell("sst2", 0, "none", 0.66)
    replayed = quality.with_replays(result, cell_path, record, 3)
    assert calls == [0, 1, 2] and replayed["replays"]["accuracy"] == pytest.approx([0.70, 0.71, 0.72])
    assert quality.replay_mean(replayed) == pytest.approx(0.71)
    kept = json.loads((record / "sst2" / "seed0" / "none-abcd1234.json").read_text())
    assert kept["replays"]["seeds"] == [0, 1, 2] and kept["metrics"]["accuracy"] == 0.66  # the cell's own stays
    assert json.loads((cell_path / "result.json").read_text())["replays"] == kept["replays"]
    assert quality.with_replays(replayed, cell_path, record, 2) is replayed and calls == [0, 1, 2]  # none again
    gone = work / "sst2" / "seed1" / "none-abcd1234"  # read back from the record only: nothing to replay
    assert quality.with_replays(cell("sst2", 1, "none", 0.6), gone, record, 3).get("replays") is None
    # the table's last column and the check on replay means, only where every cell has replays
    gold = [{**cell("sst2", s, "energy_band", 0.7), "replays": {"accuracy": [0.74 + s / 100] * 3}} for s in (0, 1)]
    plain = [{**cell("sst2", s, "none", 0.7), "replays": {"accuracy": [0.70, 0.72, 0.74]}} for s in (0, 1)]
    lines = quality.table(gold + plain, {}, seeds_asked=[0, 1])
    assert lines[2].endswith("| 0.7450 (0.0071), 3 a cell |") and lines[3].endswith("| 0.7200 (0.0000), 3 a cell |")
    found = "\n".join(quality.checks(gold + plain, {}))
    assert "sst2: GOLD - no feedback on the replay means = +2.5 points (larger seed sd 0.7 points)" in found
    lines = quality.table(gold + [cell("sst2", 0, "none", 0.7)], {}, seeds_asked=[0])
    assert lines[3].endswith("| - |")
    assert "replay means" not in "\n".join(quality.checks(gold + [cell("sst2", 0, "none", 0.7)], {}))
    partial = [plain[0], cell("sst2", 1, "none", 0.7)]  # seed 1's cell without replays
    lines = quality.table(gold + partial, {}, seeds_asked=[0, 1])
    assert lines[3].endswith("| 0.7200 (-), 3 a cell; seed 0 of 2 (partial) |"), lines[3]
    assert "replay means" not in "\n".join(quality.checks(gold + partial, {}))
