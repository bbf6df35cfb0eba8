"""Ray tier, seq2seq: the embedded causal-LM student (SmolLM2-135M) trained briefly with Ray
Train on hand-written QA samples, exported, then `gold-ray eval` on real SQuAD rows.

The training is a smoke run (1 worker, 1 epoch, 16 samples): the check is that the path
works end to end and the metrics are computed honestly, not that the student is good.
"""

from pathlib import Path

import pytest

from gold_ray.config import load_config
from gold_ray.core.samples import sample_id

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]

FACTS = [
    ("The Blue Lake lies north of the town of Arden.", "Where does the Blue Lake lie?", "north of the town of Arden"),
    ("Ada built her first telescope in 1851.", "When did Ada build her first telescope?", "1851"),
    ("The bakery on Mill Street sells rye bread.", "What does the bakery sell?", "rye bread"),
    ("Tom's dog is called Biscuit.", "What is Tom's dog called?", "Biscuit"),
]
OVERRIDES = ["training.workers=1", "training.epochs=1", "training.batch_size=8", "training.learning_rate=1e-5",
             "student.max_length=128", "student.max_target_length=16"]


def qa_samples():
    rows = [(f"{c} It is mentioned in guide {k}.", q, a) for k in range(4) for c, q, a in FACTS]
    return [
        {"id": sample_id(0, "train", i), "round": 0, "kind": "train", "label": None, "provenance": {},
         "fields": {"context": c, "question": q, "answer": a}}
        for i, (c, q, a) in enumerate(rows)
    ]


@pytest.mark.timeout(600)
def test_causal_lm_student_trains_exports_and_evaluates_on_squad(ray_local, tmp_path, capsys):
    import torch

    from gold_ray.cli import main
    from gold_ray.scorer import ScorerPool
    from gold_ray.student import META_FILE
    from gold_ray.trainer import train_student

    config = load_config(ROOT / "configs/squad.yaml", OVERRIDES)
    samples = qa_samples()
    before = ScorerPool(config, None, replicas=1)
    try:
        loss_before = [s["loss"] for s in before.score(samples)]
        result = train_student(config, [ray_local.put(samples)], None, tmp_path / "student")
        print("train:", result.to_dict())
        before.load(result.checkpoint_dir)
        after = before.score(samples)
    finally:
        before.shutdown()
    assert result.samples == 16 and len(result.epoch_losses) == 1
    assert (Path(result.checkpoint_dir) / META_FILE).is_file()
    # Two steps at a small learning rate: the loss on the training samples goes down.
    assert sum(s["loss"] for s in after) < sum(loss_before)
    assert all(s["predicted"] is None for s in after)  # no generation in scoring

    # Evaluate on real SQuAD rows. One torch thread: on a busy 2-core machine, two threads
    # thrash (measured 71 s against 4 s for one forward pass).
    torch.set_num_threads(1)
    args = ["eval", result.checkpoint_dir, "--config", str(ROOT / "configs/squad.yaml"), "--limit", "4",
            "--set", "student.max_length=256", "--set", "student.max_target_length=16"]
    code = main(args)
    out = capsys.readouterr().out
    print(out)
    assert code == 0
    values = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert values["n"] == "4" and values["file"].endswith("squad_v1.1/validation.jsonl")
    assert 0.0 <= float(values["exact_match"]) <= float(values["f1"]) <= 1.0
