"""The classifier's pooling and the head's learning rate, on the embedded MiniLM (real weights,
no Ray): ``auto`` reads a sentence-transformers encoder by its mean, a saved student keeps its
pooling, and the fresh head gets its own parameter group."""

import json
from pathlib import Path

import pytest
import torch

from gold_ray.config import load_config
from gold_ray.errors import UserError
from gold_ray.student import POOLING_KEY, MeanPooledClassifier, encode, forward, load_student, save_student

ROOT = Path(__file__).resolve().parents[1]
ROWS = [{"text_a": "a fine film", "text_b": None, "target": "positive"},
        {"text_a": "long, loud and boring beyond all words and patience", "text_b": None, "target": "negative"}]


def config(*overrides):
    return load_config(ROOT / "configs/sst2.yaml", list(overrides))


@pytest.fixture(scope="module")
def mean_student():
    torch.manual_seed(0)
    return load_student(config())


@torch.no_grad()
def logits(student, rows):
    student.model.eval()
    return forward(student, encode(student, rows)).logits


def test_auto_reads_the_sentence_encoder_by_its_masked_mean(mean_student):
    assert mean_student.pooling == "mean" and isinstance(mean_student.model, MeanPooledClassifier)
    hf = mean_student.base_model
    batch = encode(mean_student, ROWS[:1])
    with torch.no_grad():
        hidden = hf.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         token_type_ids=batch["token_type_ids"]).last_hidden_state[0]
        expected = hf.classifier(hidden.mean(dim=0))
    # Alone, and beside a longer row that pads it: the padding is masked out of the mean.
    assert torch.allclose(logits(mean_student, ROWS[:1])[0], expected, atol=1e-5)
    assert torch.allclose(logits(mean_student, ROWS)[0], expected, atol=1e-5)
    assert not any(p.requires_grad for p in hf.bert.pooler.parameters())


def test_cls_is_the_models_own_head():
    student = load_student(config("student.pooling=cls"))
    assert student.pooling == "cls" and student.model is student.base_model
    assert all(p.requires_grad for p in student.model.parameters())


def test_a_saved_student_keeps_its_pooling_and_refuses_another(mean_student, tmp_path):
    save_student(mean_student, tmp_path / "s")
    again = load_student(config(), tmp_path / "s")
    assert again.pooling == "mean"
    assert torch.allclose(logits(again, ROWS), logits(mean_student, ROWS), atol=1e-6)
    with pytest.raises(UserError, match="trained with student.pooling=mean; set student.pooling=mean or auto"):
        load_student(config("student.pooling=cls"), tmp_path / "s")


def test_a_cls_student_saved_stays_cls_under_auto(tmp_path):
    save_student(load_student(config("student.pooling=cls")), tmp_path / "s")
    assert json.loads((tmp_path / "s" / "config.json").read_text())[POOLING_KEY] == "cls"
    assert load_student(config(), tmp_path / "s").pooling == "cls"


def test_the_head_gets_its_own_learning_rate(mean_student):
    trainable = [p for p in mean_student.model.parameters() if p.requires_grad]
    body, head = mean_student.param_groups(5e-5, 1e-3)
    assert body["lr"] == 5e-5 and head["lr"] == 1e-3
    assert {id(p) for p in head["params"]} == {id(p) for p in mean_student.base_model.classifier.parameters()}
    assert sorted(map(id, body["params"] + head["params"])) == sorted(map(id, trainable))
    (one,) = mean_student.param_groups(5e-5, None)
    assert one["lr"] == 5e-5 and len(one["params"]) == len(trainable)


def test_mean_pooling_on_a_model_without_a_linear_head_is_refused(mean_student):
    from types import SimpleNamespace

    from gold_ray.student import _pooling

    headless = SimpleNamespace(config=mean_student.base_model.config.__class__(), base_model_prefix="bert",
                               bert=object(), dropout=object(), classifier=object())
    with pytest.raises(UserError, match="needs a BERT-style classifier.*set student.pooling=cls"):
        _pooling("somewhere", headless, "mean")
