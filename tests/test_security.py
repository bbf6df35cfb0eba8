"""Security defaults: no HTTP ingress, no remote code, no secrets in run files, generated text
never executed. Unit tier (no Ray cluster, no model)."""

import ast
import json
import secrets
from pathlib import Path

import pytest

from gold_ray.config import load_config
from gold_ray.generator import GeneratorPool, deployment_options, engine_kwargs
from gold_ray.rundir import RunDir, run_info

ROOT = Path(__file__).resolve().parents[1]
SECRET_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "WANDB_API_KEY",
               "RAY_AUTH_TOKEN")


def sst2(*overrides):
    return load_config(ROOT / "configs/sst2.yaml", list(overrides))


def files_holding(root: Path, values: list[str]) -> list[str]:
    """Files under root whose bytes contain any of values."""
    return [str(p) for p in root.rglob("*") if p.is_file() and any(v.encode() in p.read_bytes() for v in values)]


@pytest.fixture
def secret_env(monkeypatch):
    values = {name: f"s3cr3t-{secrets.token_hex(12)}" for name in SECRET_VARS}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return list(values.values())


def test_no_secret_env_value_reaches_the_run_directory(tmp_path, secret_env):
    config = sst2()
    run = RunDir(tmp_path / "run")
    run.open(config.to_yaml(), resume=False)  # writes config.yaml and run.json
    assert {p.name for p in run.root.iterdir()} >= {"config.yaml", "run.json"}
    assert files_holding(run.root, secret_env) == []
    # what else leaves the driver: the run info, the config sent to actors, the replica options
    for text in (json.dumps(run_info()), config.model_dump_json(), json.dumps(deployment_options(config))):
        assert not any(v in text for v in secret_env)
    # the scan itself can fail: a planted secret is found
    (tmp_path / "planted.txt").write_text(f"token={secret_env[0]}")
    assert files_holding(tmp_path, secret_env) == [str(tmp_path / "planted.txt")]


def test_replica_env_carries_only_vllm_settings():
    env = deployment_options(sst2())["ray_actor_options"]["runtime_env"]["env_vars"]
    assert set(env) <= {"VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_CPU_NUM_OF_RESERVED_CPU"}
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"  # the default: every core computes


def test_serve_http_proxy_is_off_and_bound_to_localhost(monkeypatch):
    from ray import serve

    calls = {}
    monkeypatch.setattr(serve, "start", lambda **kw: calls.setdefault("start", kw))
    monkeypatch.setattr(serve, "run", lambda app, **kw: calls.setdefault("run", kw))
    GeneratorPool.start(sst2(), engine_factory=object)  # a factory: never attaches to a running app
    assert calls["start"]["proxy_location"] == "Disabled"
    assert calls["start"]["http_options"]["host"] == "127.0.0.1"
    assert calls["run"]["route_prefix"] is None  # no HTTP route even where a proxy runs


def test_remote_code_is_off_unless_the_config_says_so():
    config = sst2()
    assert config.teacher.trust_remote_code is False and config.student.trust_remote_code is False
    assert engine_kwargs(config, "/m")["trust_remote_code"] is False
    assert engine_kwargs(sst2("teacher.trust_remote_code=true"), "/m")["trust_remote_code"] is True


BUILTINS = {"eval", "exec", "compile", "__import__"}  # called by bare name (re.compile is fine)
OS_EXEC = {"system", "popen", "execv", "execvp", "execl", "execlp", "spawnl", "spawnv"}


def dangerous_calls(source: str) -> list[str]:
    """Builtin eval/exec/compile, os.system/popen/exec*, and any call with shell=True in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in BUILTINS:
            found.append(f"{func.id}() line {node.lineno}")
        if isinstance(func, ast.Attribute) and func.attr in OS_EXEC and getattr(func.value, "id", "") == "os":
            found.append(f"os.{func.attr}() line {node.lineno}")
        if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
               for k in node.keywords):
            found.append(f"shell= line {node.lineno}")
    return found


def test_no_code_path_can_execute_or_shell_out_text():
    """Static guard: generated text is data. No module evaluates strings or builds shell
    commands (the one subprocess, `git rev-parse HEAD`, takes a fixed argument list)."""
    hits = {str(p.relative_to(ROOT)): dangerous_calls(p.read_text()) for p in (ROOT / "gold_ray").rglob("*.py")}
    assert {path: found for path, found in hits.items() if found} == {}
    assert dangerous_calls("import os\nos.system('x')\nsubprocess.run(c, shell=True)\neval(t)\nre.compile(t)\n") == [
        "os.system() line 2", "shell= line 3", "eval() line 4"]
