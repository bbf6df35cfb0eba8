"""Progress of long phases: the bar's text and how often a batch reports (pure)."""

from gold_ray.coordinator import progress_bar
from gold_ray.generator import Ticker


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
