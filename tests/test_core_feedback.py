import numpy as np
import pytest

from gold_ray.core.feedback import (
    POLICIES,
    band_indices,
    noise_filter_keep,
    rank_quantiles,
    select_feedback,
)


def rng(seed=0):
    return np.random.default_rng(seed)


def test_rank_quantiles():
    assert rank_quantiles(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]
    assert rank_quantiles(np.array([7.0])).tolist() == [0.0]


def test_band_indices_are_the_50_to_80_percent_ranks():
    energies = np.arange(11, dtype=float)[::-1]  # index i has energy 10 - i
    picked = band_indices(energies, (0.5, 0.8))
    # rank quantiles 0.5..0.8 are energies 5..8, i.e. indices 5..2, in ascending energy.
    assert picked.tolist() == [5, 4, 3, 2]


def test_energy_band_policy_picks_at_most_k_inside_band():
    energies = rng(1).normal(size=100)
    picked = select_feedback("energy_band", energies, (0.5, 0.8), 4, rng(2))
    q = rank_quantiles(energies)
    assert len(picked) == 4 and len(set(picked.tolist())) == 4
    assert all(0.5 <= q[i] <= 0.8 for i in picked)


def test_other_policies():
    energies = np.array([0.1, 5.0, 3.0, -2.0])
    assert select_feedback("none", energies, (0.5, 0.8), 3, rng()).size == 0
    assert select_feedback("highest_energy", energies, (0.5, 0.8), 2, rng()).tolist() == [1, 2]
    random_pick = select_feedback("random", energies, (0.5, 0.8), 10, rng())
    assert sorted(random_pick.tolist()) == [0, 1, 2, 3]
    assert set(POLICIES) == {"energy_band", "none", "random", "highest_energy"}
    with pytest.raises(KeyError, match="unknown feedback policy"):
        select_feedback("best", energies, (0.5, 0.8), 1, rng())


def test_noise_filter_drops_highest_energy_fraction():
    energies = np.array([0.0, 9.0, 1.0, 8.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    keep = noise_filter_keep(energies, 0.2)
    assert keep.tolist() == [True, False, True, False, True, True, True, True, True, True]
    assert noise_filter_keep(energies, 0.0).all()
    with pytest.raises(ValueError):
        noise_filter_keep(energies, 1.0)


def test_core_imports_neither_ray_nor_vllm():
    import subprocess
    import sys

    code = (
        "import sys, pkgutil, importlib, gold_ray.core as c\n"
        "for m in pkgutil.iter_modules(c.__path__): importlib.import_module('gold_ray.core.' + m.name)\n"
        "bad = [m for m in ('ray', 'vllm') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
