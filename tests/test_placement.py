"""Placement on a multi-node cluster: a `ray.cluster_utils.Cluster` of a head and 3 worker
nodes with custom resources ("gen", "train", "score"), and a config that asks for them. The
generator replicas (Ray Serve; a fake engine, so no vLLM start), the Ray Train workers (a real
1-epoch fit of the embedded student) and the scorer actor must each land on their node.

The cluster runs in a child process (this file run as a script): a process can be connected
to one Ray cluster only, and the test session's shared local Ray (conftest ``ray_local``) may
already be up in this one. The child prints where everything landed as one JSON line.
"""

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("lush grim witty tender bleak vivid clumsy daring hollow radiant sluggish brisk moody "
         "gentle savage quiet loud clever dreary lavish stiff nimble murky sunny bitter sweet").split()
OVERRIDES = [
    "generator.app_name=gold_ray_placement",
    "generator.replicas=2",
    "generator.num_cpus=0.5",
    "generator.resources={gen: 1}",
    "training.workers=2",
    "training.resources_per_worker={train: 1}",
    "training.epochs=1",
    "training.batch_size=4",
    "scorer.resources={score: 1}",
]
NODES = {"gen": {"num_cpus": 1, "resources": {"gen": 2}},
         "train": {"num_cpus": 2, "resources": {"train": 2}},
         "score": {"num_cpus": 1, "resources": {"score": 1}}}


class ValidEngine:
    """Answers every request with a valid, distinct sample of the asked label."""

    def __init__(self, config):
        pass

    async def complete(self, messages, schema, sampling, request_id):
        from gold_ray.generator import EngineOutput

        await asyncio.sleep(0)
        words = " ".join(random.Random(sampling["seed"]).sample(WORDS, 9))
        text = json.dumps({"label": schema["properties"]["label"]["enum"][0], "text": f"the film felt {words}"})
        return EngineOutput(text, len(text) // 4, "stop")


def _node_of(actor) -> str:
    import ray

    return ray.get(actor.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()))


def probe(out: Path) -> dict:
    """Start the cluster, place every role, report node ids; always tear everything down."""
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from gold_ray.config import load_config
    from gold_ray.generator import GeneratorPool
    from gold_ray.scorer import ScorerPool
    from gold_ray.trainer import train_student

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})  # the driver, Serve's controller
    try:
        nodes = {name: cluster.add_node(**args).node_id for name, args in NODES.items()}
        nodes["head"] = cluster.head_node.node_id
        ray.init(address=cluster.address, log_to_driver=False)
        cfg = load_config(ROOT / "configs" / "sst2.yaml", OVERRIDES)

        pool = GeneratorPool.start(cfg, engine_factory=ValidEngine)
        batch = pool.generate(0, "train", 16, feedback=[], feedback_round=-1)
        served_by = {s["provenance"]["replica"] for s in ray.get(batch.samples_ref)}
        replicas = {a["name"].rsplit("#", 1)[-1]: _node_of(ray.get_actor(a["name"], namespace=a["namespace"]))
                    for a in ray.util.list_named_actors(all_namespaces=True)
                    if a["name"].startswith(f"SERVE_REPLICA::{cfg.generator.app_name}#")}

        scorer = ScorerPool(cfg)
        scorer_nodes = [_node_of(actor) for actor in scorer.actors]
        trained = train_student(cfg, [batch.samples_ref], init_checkpoint=None, output_dir=out / "student")
        scores = scorer.score(batch.samples_ref)  # the scorer works where it landed
        return {"nodes": nodes, "replicas": replicas, "served_by": sorted(served_by), "scorer": scorer_nodes,
                "train_workers": trained.extra["worker_nodes"], "trained_samples": trained.samples,
                "scored": len(scores), "accepted": batch.accepted}
    finally:
        try:
            serve.shutdown()
        except Exception:  # Serve never started
            pass
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.ray
@pytest.mark.timeout(360)
def test_roles_land_on_the_nodes_the_config_asks_for(tmp_path):
    address_file = Path("/tmp/ray/ray_current_cluster")  # cluster_utils writes it; keep what was there
    before = address_file.read_text() if address_file.exists() else None
    child = subprocess.Popen([sys.executable, __file__, str(tmp_path)], cwd=ROOT, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=330)
    finally:
        if child.poll() is None:  # timed out: end the child's whole group (its Ray nodes too)
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        if before is None:
            address_file.unlink(missing_ok=True)
        elif address_file.exists() and address_file.read_text() != before:
            address_file.write_text(before)
    assert child.returncode == 0, (out[-3000:], err[-6000:])
    placed = json.loads(out.strip().splitlines()[-1])
    nodes = placed["nodes"]
    assert len(set(nodes.values())) == 4

    assert len(placed["replicas"]) == 2 and set(placed["replicas"].values()) == {nodes["gen"]}, placed
    assert set(placed["served_by"]) <= set(placed["replicas"]) and placed["accepted"] == 16
    assert placed["train_workers"] == [nodes["train"], nodes["train"]], placed
    assert placed["trained_samples"] == 16
    assert placed["scorer"] == [nodes["score"]] and placed["scored"] == 16, placed


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(json.dumps(probe(Path(sys.argv[1]))), flush=True)
