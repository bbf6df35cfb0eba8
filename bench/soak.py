"""Soak of the generator pool: thousands of requests through the real Ray Serve deployment.

What it soaks is the pool machinery, not vLLM: ``GeneratorPool.generate`` -> the batch Ray task
-> Serve's router -> ``GeneratorServer`` replicas -> parsing, validation and de-duplication.
With ``--engine sleep`` (default) the engine is :class:`SleepEngine`: it sleeps as long as a CPU
engine would take for the tokens it "generates" (capped at ``--engine-batch`` requests at once per
replica, as continuous batching is) and returns a valid, unique JSON sample; vLLM is not measured.
With ``--engine vllm`` every request goes to the real teacher in vLLM's CPU engine (one replica
per 2 cores); a replica's memory then includes its engine processes, and each line also splits
it by process (the Serve replica, ``VLLM::EngineCore``, ``VLLM::Worker``). ``--engine-env``
passes more environment to the replicas and their engines (e.g. glibc malloc settings).

Load is bounded: requests go in windows of ``--window`` (one ``generate`` call each, so at
most a window is in flight). After each window it prints one line: accepted, rejected,
failed requests, retries, requests/s, and the RSS of each replica, of the Serve controller,
of the other Ray workers (the batch tasks run there) and of the driver. The last lines
compare the first and last windows after warm-up.

    PYTHONPATH=. python bench/soak.py --requests 2000 --window 100 --replicas 2
    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/soak.py --engine vllm --replicas 1 --engine-batch 128 --window 128
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import random
import statistics
import time
from pathlib import Path

from gold_ray.config import load_config
from gold_ray.generator import REQUEST_FAILED, EngineOutput, GeneratorPool

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
VOCAB = ("film plot actor scene score script camera story ending dialogue pacing cast director sound light "
         "colour frame edit music humour tension mood character villain hero twist crowd city night winter "
         "summer river house train letter garden war family friend stranger dream memory silence voice "
         "warm cold bright dull sharp slow quick bold shy loud gentle bitter sweet odd plain rich thin").split()


class SleepEngine:
    """Stands in for vLLM: latency from the token count, a batch cap, valid unique outputs."""

    def __init__(self, config, batch: int = 64, seconds_per_token: float = 0.004, base_s: float = 0.05):
        self.batch = asyncio.Semaphore(batch)  # binds to the replica's event loop on first use
        self.seconds_per_token, self.base_s = seconds_per_token, base_s

    async def complete(self, messages, schema, sampling, request_id):
        rng = random.Random(f"{request_id.rsplit('-', 1)[0]}-{sampling['seed']}")  # same per retry
        words = rng.sample(VOCAB, 12)
        tokens = rng.randint(20, 60)
        async with self.batch:
            await asyncio.sleep(self.base_s + tokens * self.seconds_per_token)
        label = schema["properties"]["label"]["enum"][0]
        return EngineOutput(json.dumps({"label": label, "text": "the " + " ".join(words)}), tokens, "stop")


def rss_mib(pid: int, with_children: bool = False) -> float:
    """RSS of a process (and, if asked, of its descendants: a replica's vLLM engine processes)."""
    import psutil

    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)] if with_children else [process]
        return sum(p.memory_info().rss for p in family) / MIB
    except psutil.Error:  # the process went away between listing and reading
        return float("nan")


def family_mib(pid: int) -> dict[str, int]:
    """RSS of a replica and each of its descendants by process title (vLLM retitles its engine
    processes ``VLLM::EngineCore`` and ``VLLM::Worker``): where memory grows, if it does."""
    import psutil

    out: dict[str, int] = {}
    try:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            title = "replica" if process.pid == pid else (process.cmdline() or [process.name()])[0].split()[0]
            out[title] = out.get(title, 0) + round(process.memory_info().rss / MIB)
    except psutil.Error:  # a process went away between listing and reading
        pass
    return out


def ray_processes() -> dict[str, list[int]]:
    """This driver's local Ray processes by role: replicas, controller, other workers. The
    local Ray is a child of this process, so nothing of another session is measured."""
    import psutil
    from ray._private import state

    ours = {p.pid: p for p in psutil.Process().children(recursive=True)}
    actors = state.actors(actor_state_name="ALIVE").values()
    roles = {"replica": [a["Pid"] for a in actors if a["ActorClassName"].startswith("ServeReplica:")],
             "controller": [a["Pid"] for a in actors if a["ActorClassName"] == "ServeController"]}
    known = {pid for pids in roles.values() for pid in pids}
    roles["workers"] = [pid for pid, p in ours.items() if pid not in known and _is_worker(p)]
    return roles


def _is_worker(process) -> bool:
    try:
        command = " ".join(process.cmdline())  # Ray retitles its workers "ray::<task or actor>"
        return command.startswith("ray::") or "default_worker.py" in command
    except Exception:  # exited
        return False


def window_line(w: int, done: int, result, seconds: float, procs: dict[str, list[int]], driver: float) -> dict:
    failed = result.rejected.get(REQUEST_FAILED, 0)
    row = {"window": w, "requests": done, "accepted": result.accepted, "failed": failed, "retries": result.retries,
           "rejected": sum(result.rejected.values()) - failed, "req_per_s": result_count(result) / seconds,
           "replica_mib": [round(rss_mib(p, with_children=True)) for p in sorted(procs["replica"])],
           "replica_parts_mib": [family_mib(p) for p in sorted(procs["replica"])],
           "controller_mib": round(sum(rss_mib(p) for p in procs["controller"])),
           "workers_mib": round(sum(rss_mib(p) for p in procs["workers"])), "workers": len(procs["workers"]),
           "driver_mib": round(driver)}
    print(f"w{w:03d} n={done:5d} ok={row['accepted']:3d} rej={row['rejected']} fail={failed} "
          f"retry={row['retries']} {row['req_per_s']:6.1f} req/s replicas={row['replica_mib']} MiB "
          f"controller={row['controller_mib']} workers={row['workers_mib']} ({row['workers']}) "
          f"driver={row['driver_mib']} parts={row['replica_parts_mib']}", flush=True)
    return row


def result_count(result) -> int:
    return result.accepted + sum(result.rejected.values())


def summary(rows: list[dict], warmup: int) -> None:
    steady = rows[warmup:]
    first, last = steady[0], steady[-1]
    rates = [r["req_per_s"] for r in steady]
    print(f"requests {rows[-1]['requests']}, failed {sum(r['failed'] for r in rows)}, "
          f"retries {sum(r['retries'] for r in rows)}, rejected {sum(r['rejected'] for r in rows)}")
    print(f"throughput after {warmup} warm-up windows: mean {statistics.mean(rates):.1f} req/s, "
          f"min {min(rates):.1f}, max {max(rates):.1f}, cv {statistics.pstdev(rates) / statistics.mean(rates):.3f}; "
          f"first half {statistics.mean(rates[:len(rates) // 2]):.1f}, second half "
          f"{statistics.mean(rates[len(rates) // 2:]):.1f}")
    for key in ("replica_mib", "replica_parts_mib", "controller_mib", "workers_mib", "driver_mib"):
        print(f"rss {key}: window {first['window']} {first[key]} -> window {last['window']} {last[key]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--window", type=int, default=100, help="requests per generate() call (= most in flight)")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--engine-batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2, help="windows left out of the summary")
    parser.add_argument("--engine", choices=["sleep", "vllm"], default="sleep",
                        help="sleep: the stand-in engine (pool machinery only); vllm: the real teacher")
    parser.add_argument("--out", type=Path, help="write the per-window rows as JSON here")
    parser.add_argument("--engine-env", action="append", default=[], metavar="KEY=VALUE",
                        help="more environment for the replicas and their engine processes (e.g. glibc malloc tuning)")
    args = parser.parse_args()
    if args.engine_env:
        import gold_ray.generator as generator

        extra = dict(item.split("=", 1) for item in args.engine_env)
        base = generator.cpu_engine_env
        generator.cpu_engine_env = lambda config: {**base(config), **extra}

    import functools

    import ray

    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()} "
          f"python {platform.python_version()} ray {ray.__version__}", flush=True)
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    config = load_config(ROOT / "configs/sst2.yaml", [
        "generator.app_name=gold_ray_soak", f"generator.replicas={args.replicas}", "generator.num_cpus=0.5",
        f"generator.max_inflight={args.engine_batch}", "generator.max_retries=2"])
    print(f"engine: {args.engine}", flush=True)
    import psutil

    driver = psutil.Process()
    rows = []
    try:
        factory = functools.partial(SleepEngine, batch=args.engine_batch) if args.engine == "sleep" else None
        pool = GeneratorPool.start(config, engine_factory=factory)
        done = 0
        for w in range(math.ceil(args.requests / args.window)):  # at least --requests
            start = time.perf_counter()
            # one round index per window: ids stay unique across the soak
            result = pool.generate(w, "train", args.window, feedback=[], feedback_round=-1)
            seconds = time.perf_counter() - start
            done += args.window
            # the soak keeps no samples: rebinding ``result`` frees the last window's from the store
            rows.append(window_line(w, done, result, seconds, ray_processes(), driver.memory_info().rss / MIB))
        pool.shutdown()
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    summary(rows, args.warmup)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
