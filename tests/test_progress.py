"""Progress of long phases (the bar's text, how often a batch reports) and when the validation batch overlaps training (pure)."""

from pathlib import Path

from gold_ray.coordinator import progress_bar
from gold_ray.generator import Ticker

ROOT = Path(__file__).resolve().parents[1]


class Listener:
    """Stands in for the coordinator's actor handle: records ``progress_tick.remote`` calls."""

    def __init__(self):
        self.calls = []
        self.progress_tick = self

    def remote(self, *args):
        self.calls.append(args)


def test_bar_shows_fraction_counts_rate_and_eta():
    line = progress_bar("round 0 train", 102, 256, 95, 4300, 105.0)
    assert line.startswith("[########------------]  40% round 0 train 102/256, 95 ok, 41 tok/s, eta 2m38s")
    assert progress_bar("teacher eval", 0, 0, 0, 0, 0.0).startswith("[--------------------]   0%")


def test_ticker_reports_about_every_tenth_and_the_end():
    listener = Listener()
    ticker = Ticker(listener, "round 1 validation", 25)
    for i in range(25):
        ticker.tick(accepted=i % 5 != 0, tokens=40)
    assert [c[1] for c in listener.calls] == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25]
    label, done, total, accepted, tokens, _ = listener.calls[-1]
    assert (label, done, total, accepted, tokens) == ("round 1 validation", 25, 25, 20, 1000)


def test_ticker_without_listener_only_counts():
    ticker = Ticker(None, "x", 3)
    for _ in range(3):
        ticker.tick()
    assert ticker.done == 3 and ticker.accepted == 3


def test_validation_overlaps_training_only_where_the_teacher_has_its_own_cores(monkeypatch):
    import ray

    from gold_ray.config import load_config
    from gold_ray.coordinator import overlap_validation

    config = ROOT / "configs/sst2.yaml"
    nodes = [{"Alive": True}]
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    assert not overlap_validation(load_config(config))  # one CPU machine: after training
    assert overlap_validation(load_config(config, ["generator.num_gpus=1"]))  # a GPU teacher
    nodes.append({"Alive": True})
    assert overlap_validation(load_config(config))  # a cluster
    nodes[1]["Alive"] = False
    assert not overlap_validation(load_config(config))  # a dead node gives no cores
    assert overlap_validation(load_config(config, ["pipeline.staleness=1"]))  # the teacher works during training anyway
    assert overlap_validation(load_config(config, ["pipeline.overlap_validation=true"]))
    assert not overlap_validation(load_config(config, ["pipeline.overlap_validation=false", "generator.num_gpus=1"]))
