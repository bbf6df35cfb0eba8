"""Teacher replicas on one CPU machine: 1 replica (vLLM's 'auto' core binding) against N replicas
with a core each (``generator.omp_threads_bind: ['0', '1', ...]``), side by side in one run.

Both pools are deployed and warmed up first, then generate the same round-0 training requests
(same seeds) through ``GeneratorPool.generate``, taking turns on the same chunks (one pool busy
at a time) so that a changing background load hits both alike. The last line is ``replicas_vs_one=<N-replica tok/s /
1-replica tok/s>``.

    PYTHONPATH=. HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 python bench/replicas.py --samples 128 --replicas 2
"""

from __future__ import annotations

import argparse
import os
import time

from gold_ray.config import load_config
from gold_ray.generator import GeneratorPool

WARMUP = 8


def settings(replicas: int) -> dict[str, list[str]]:
    cores = [str(c) for c in range(replicas)]
    return {
        "1 replica, auto binding": ["generator.replicas=1"],
        f"{replicas} replicas, a core each": [f"generator.replicas={replicas}",
                                              f"generator.omp_threads_bind=[{','.join(cores)}]"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/sst2.yaml")
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    pools = {}
    for i, (name, overrides) in enumerate(settings(args.replicas).items()):  # both up at once, idle in turn
        pools[name] = GeneratorPool.start(load_config(args.config, [*overrides, f"generator.app_name=bench_{i}"]))
        pools[name].generate(99, "train", WARMUP, [], -1)  # the first batch after start is slow
    totals = {name: [0.0, 0.0] for name in pools}
    per_chunk = args.samples // args.chunks
    for chunk in range(args.chunks):
        for name, pool in pools.items():
            start = time.perf_counter()
            result = pool.generate(chunk, "train", per_chunk, [], -1)
            seconds = time.perf_counter() - start
            totals[name][0] += result.tokens
            totals[name][1] += seconds
            print(f"chunk {chunk} {name:28s} {result.tokens:6d} tokens {seconds:7.1f}s "
                  f"{result.tokens / seconds:6.1f} tok/s (accepted {result.accepted})", flush=True)
    for pool in pools.values():
        pool.shutdown()
    rates = {name: t / s for name, (t, s) in totals.items()}
    for name, rate in rates.items():
        print(f"{name:28s} {rate:6.1f} tok/s")
    one, many = list(rates.values())
    print(f"replicas_vs_one={many / one:.3f}")


if __name__ == "__main__":
    main()
