"""The student path on a GPU against the same machine's CPU, with gold_ray's own code.

Measures, for the embedded MiniLM-L6 classifier on the sst2 config:

1. training steps: per batch exactly what Ray Train's worker loop does
   (``gold_ray.trainer.train_loop_per_worker``): ``student.encode`` -> ``student.forward`` ->
   ``student.batch_loss`` (symmetric cross-entropy, ``core.losses``) -> AdamW
   ``zero_grad``/``backward``/``step`` -> ``loss.item()``; samples/s per device and batch size;
2. energy scoring: ``gold_ray.scorer.StudentScorer.score`` (the scorer actor's class: encode,
   forward, ``core.energy`` energies, per-sample loss, predicted label); samples/s;
3. optionally (``--part teacher``): ``bench/random_teacher.py``'s Llama-3-8B-shaped random model,
   built on the GPU, and a transformers ``generate`` tokens/s in bf16 (batch 32, 128 new tokens,
   gold_ray's real sst2 round-0 prompts): the HF baseline that serve_vs_hf compares against.

Every row is cut to ``--max-length`` tokens (the texts are longer), so a batch is always
``batch x max_length`` tokens: the student's most expensive case. Tokenisation is inside the
timed step, as in the training loop; its share is reported on its own (``encode_ms``).
Where Ray is not installed (a bare GPU machine), ``gold_ray.scorer`` is imported with a stub
``ray`` module: only ``ray.remote`` is touched at import, and ``StudentScorer`` is plain Python.
Without the packaged weights (or with ``--random-weights``) the student is the same
architecture with random-initialised weights: throughput does not depend on the weights.

    python bench/gpu_student.py                          # cuda and cpu if there is a GPU
    python bench/gpu_student.py --device cpu --quick     # a CPU-only check in seconds
    python bench/gpu_student.py --part teacher           # step 3 (GPU; --teacher-tiny on a CPU)

Prints a table and ``RESULT {json}`` lines; with ``--out DIR`` also writes ``DIR/<part>.json``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

POSITIVE = ["wonderful", "brilliant", "delightful", "superb", "moving", "charming", "gorgeous", "masterful"]
NEGATIVE = ["terrible", "boring", "awful", "dreadful", "tedious", "clumsy", "lifeless", "painful"]
THINGS = ["film", "acting", "plot", "script", "soundtrack", "ending", "dialogue", "pacing"]


def _texts(count: int) -> list[tuple[str, str]]:
    """``count`` (text, label) pairs, each text well over 128 tokens (cut at max_length)."""
    out = []
    for i in range(count):
        label, words = ("positive", POSITIVE) if i % 2 == 0 else ("negative", NEGATIVE)
        parts = [
            f"the {THINGS[(i + k) % len(THINGS)]} of this picture was {words[(i * 7 + k) % len(words)]}, "
            f"and scene {k + 1} of reel {i % 13} made that plain to everyone in the room"
            for k in range(8)
        ]
        out.append(("; ".join(parts) + ".", label))
    return out


def _samples(count: int) -> list[dict[str, Any]]:
    """Sample records (gold_ray.core.samples) as the scorer receives them."""
    from gold_ray.core.samples import sample_id

    return [
        {
            "id": sample_id(0, "train", i),
            "round": 0,
            "kind": "train",
            "fields": {"text": text},
            "label": label,
            "provenance": {"teacher": "bench"},
        }
        for i, (text, label) in enumerate(_texts(count))
    ]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ------------------------------------------------------------------ the student


def student_source(random_weights: bool) -> tuple[str, str]:
    """The checkpoint directory to load and a note on its weights. The packaged MiniLM when
    its weights are there; else its config and tokenizer with random weights of that shape."""
    import torch
    from transformers import AutoConfig, AutoModel

    from gold_ray.embedded import resolve_model

    src = Path(resolve_model("embedded:minilm-l6"))
    has_weights = any(src.glob("*.safetensors")) or (src / "pytorch_model.bin").is_file()
    if has_weights and not random_weights:
        return str(src), "packaged all-MiniLM-L6-v2 weights"
    dst = Path(tempfile.mkdtemp(prefix="gpu_student_minilm."))
    atexit.register(shutil.rmtree, dst, ignore_errors=True)
    for path in src.iterdir():
        if path.is_file() and path.suffix not in (".safetensors", ".bin"):
            shutil.copy2(path, dst / path.name)
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(src)).save_pretrained(dst)
    why = "--random-weights" if has_weights else "the weights were not carried"
    return str(
        dst
    ), f"random-init weights of the same shape ({why}); config and tokenizer of the packaged model"


def student_config(source: str, max_length: int, batch_size: int) -> Any:
    from gold_ray.config import load_config

    return load_config(
        ROOT / "configs/sst2.yaml",
        [
            f"student.model={source}",
            f"student.max_length={max_length}",
            f"training.batch_size={batch_size}",
            f"scorer.batch_size={batch_size}",
        ],
    )


def bench_training(config: Any, device: str, warmup: int, steps: int, max_seconds: float) -> dict[str, Any]:
    """Training steps as Ray Train's worker loop runs them, on ``device``."""
    import torch

    from gold_ray import student as st

    training = config.training
    bs = training.batch_size
    student = st.load_student(config, device=device)  # the loop's load (then DDP moves it)
    optimizer = torch.optim.AdamW(student.model.parameters(), lr=training.learning_rate)
    rows_all = [{"text_a": t, "text_b": None, "target": y} for t, y in _texts(bs * 8)]
    batches = [rows_all[i : i + bs] for i in range(0, len(rows_all), bs)]

    def step(rows: list[dict[str, Any]]) -> float:  # the body of train_loop_per_worker's batch loop
        loss = st.batch_loss(
            st.forward(student, st.encode(student, rows)), training.sce_alpha, training.sce_beta
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item() * len(rows)

    student.model.train()
    for i in range(warmup):
        step(batches[i % len(batches)])
    _sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    done, losses, start = 0, [], time.perf_counter()
    while done < steps and (done == 0 or time.perf_counter() - start < max_seconds):
        losses.append(step(batches[done % len(batches)]) / bs)
        done += 1
    _sync(device)
    seconds = time.perf_counter() - start
    # Tokenisation alone (CPU work, on every device alike), for its share of a step.
    t0 = time.perf_counter()
    for i in range(done):
        batch = st.encode(student, batches[i % len(batches)])
    encode_s = (time.perf_counter() - t0) / max(done, 1)
    out = {
        "what": "train",
        "device": device,
        "batch": bs,
        "seq_len": int(batch["input_ids"].shape[1]),
        "steps": done,
        "seconds": round(seconds, 3),
        "samples_per_s": round(done * bs / seconds, 1),
        "ms_per_step": round(1000 * seconds / done, 2),
        "encode_ms": round(1000 * encode_s, 2),
        "loss_first": round(losses[0], 4),
        "loss_last": round(losses[-1], 4),
    }
    if device.startswith("cuda"):
        out["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def import_scorer() -> tuple[Any, bool]:
    """``StudentScorer`` and whether a stub ``ray`` module had to stand in for Ray."""
    try:
        import ray  # noqa: F401

        stub = False
    except ImportError:
        ray = types.ModuleType("ray")
        ray.remote = lambda cls=None, **_: cls  # type: ignore[attr-defined]
        ray.ObjectRef = type("ObjectRef", (), {})  # type: ignore[attr-defined]
        sys.modules["ray"] = ray
        stub = True
    from gold_ray.scorer import StudentScorer

    return StudentScorer, stub


def bench_scoring(config: Any, device: str, count: int, max_seconds: float) -> dict[str, Any]:
    """``StudentScorer.score`` (what each scorer actor runs) over ``count`` samples."""
    import torch

    scorer_cls, _ = import_scorer()
    scorer = scorer_cls(config.model_dump_json(), None, device=device)
    bs = config.scorer.batch_size
    scorer.score(_samples(2 * bs))  # warm-up
    samples = _samples(count)
    _sync(device)
    done, start = 0, time.perf_counter()
    while done < count and (done == 0 or time.perf_counter() - start < max_seconds):
        scores = scorer.score(samples[done : done + 4 * bs])
        done += len(scores)
    _sync(device)
    seconds = time.perf_counter() - start
    energies = [s["energy"] for s in scores]
    out = {
        "what": "score",
        "device": device,
        "batch": bs,
        "samples": done,
        "seconds": round(seconds, 3),
        "samples_per_s": round(done / seconds, 1),
        "energy_mean": round(sum(energies) / len(energies), 4),
    }
    if device.startswith("cuda"):
        out["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def run_student(args: argparse.Namespace, devices: list[str], info: dict[str, Any]) -> list[dict[str, Any]]:
    import torch

    source, weights = student_source(args.random_weights)
    info["student_weights"] = weights
    _, info["ray_stub"] = import_scorer()
    print(
        f"student: {source} ({weights}); gold_ray.scorer imported with "
        f"{'a stub ray module (ray not installed)' if info['ray_stub'] else 'ray'}",
        flush=True,
    )
    results = []
    for device in devices:
        cuda = device.startswith("cuda")
        for bs in args.batch_sizes:
            config = student_config(source, args.max_length, bs)
            for what in ("train", "score"):
                torch.manual_seed(0)
                try:
                    if what == "train":
                        r = bench_training(
                            config,
                            device,
                            args.warmup if cuda else 1,
                            args.steps if cuda else args.cpu_steps,
                            args.max_seconds,
                        )
                    else:
                        r = bench_scoring(
                            config,
                            device,
                            args.score_samples if cuda else args.cpu_score_samples,
                            args.max_seconds,
                        )
                except Exception as exc:  # one failure must not cost the other figures
                    r = {"what": what, "device": device, "batch": bs, "error": f"{type(exc).__name__}: {exc}"}
                results.append(r)
                print("RESULT " + json.dumps(r), flush=True)
                if cuda:
                    torch.cuda.empty_cache()
    return results


def student_table(results: list[dict[str, Any]]) -> str:
    by = {(r["what"], r["device"].split(":")[0], r["batch"]): r for r in results}
    lines = [f"{'what':<7}{'batch':>6}{'cuda samples/s':>16}{'cpu samples/s':>15}{'cuda/cpu':>10}"]
    for what in ("train", "score"):
        for bs in sorted({r["batch"] for r in results}):
            g, c = by.get((what, "cuda", bs), {}), by.get((what, "cpu", bs), {})
            gs, cs = g.get("samples_per_s"), c.get("samples_per_s")
            ratio = f"{gs / cs:.1f}x" if gs and cs else "-"
            lines.append(f"{what:<7}{bs:>6}{gs if gs else '-':>16}{cs if cs else '-':>15}{ratio:>10}")
    return "\n".join(lines)


# ------------------------------------------------------------------ the teacher (step 3)


def _random_teacher() -> Any:
    sys.path.insert(0, str(ROOT / "bench"))
    import random_teacher

    return random_teacher


def run_teacher(
    args: argparse.Namespace, device: str, info: dict[str, Any], out: Path | None
) -> dict[str, Any]:
    """The random Llama-3-8B-shaped teacher: built from random_teacher's config straight on
    ``device`` and timed with ``generate``; then random_teacher.build (init + save) timed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gold_ray.config import load_config
    from gold_ray.core.prompts import PromptOptions, plan_requests

    rt = _random_teacher()
    result: dict[str, Any] = {"what": "teacher_generate", "device": device, "tiny": args.teacher_tiny}

    def save() -> None:
        print("RESULT " + json.dumps(result), flush=True)
        if out:
            (out / "teacher.json").write_text(json.dumps({"info": info, "teacher": result}, indent=1) + "\n")

    tokenizer = AutoTokenizer.from_pretrained(rt.tokenizer_dir())
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    hf_config = rt.build_config(tokenizer, tiny=args.teacher_tiny)
    dtype = torch.bfloat16
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(hf_config, dtype=dtype)
    model.eval()
    _sync(device)
    result["init_s"] = round(time.perf_counter() - t0, 1)
    result["parameters"] = sum(p.numel() for p in model.parameters())

    config = load_config(ROOT / "configs/sst2.yaml")
    g = config.generation
    options = PromptOptions(
        few_shot=g.few_shot,
        diversity_seeds=tuple(g.diversity_seeds),
        example_format=g.example_format,
        ban_openings=g.ban_openings,
    )
    requests = plan_requests(config.task, options, 0, "train", args.teacher_batch, config.run.seed)
    prompts = [
        tokenizer.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
        for r in requests
    ]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    t = config.teacher
    gen_kwargs = dict(
        do_sample=True, temperature=t.temperature, top_p=t.top_p, pad_token_id=tokenizer.pad_token_id
    )

    with torch.no_grad():
        model.generate(**enc, max_new_tokens=8, min_new_tokens=8, **gen_kwargs)  # warm-up
        _sync(device)
        runs = []
        for _ in range(args.teacher_repeats):
            start = time.perf_counter()
            gen = model.generate(
                **enc, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, **gen_kwargs
            )
            _sync(device)
            runs.append(time.perf_counter() - start)
    new = (gen.shape[1] - enc["input_ids"].shape[1]) * gen.shape[0]
    best = min(runs)
    result.update(
        {
            "dtype": "bfloat16",
            "batch": args.teacher_batch,
            "prompt_tokens_padded": int(enc["input_ids"].shape[1]),
            "new_tokens_each": args.new_tokens,
            "tokens": int(new),
            "seconds": [round(s, 2) for s in runs],
            "tokens_per_s": round(new / best, 1),
            "tokens_per_s_mean": round(new * len(runs) / sum(runs), 1),
        }
    )
    if device.startswith("cuda"):
        result["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    save()
    del model, gen
    if device.startswith("cuda"):
        torch.cuda.empty_cache()

    if not args.skip_build:  # bench/gpu_smoke.sh's step 1 as it stands: init on the device + save
        target = Path(tempfile.mkdtemp(prefix="random_teacher."))
        t0 = time.perf_counter()
        summary = rt.build(target / "model", tiny=args.teacher_tiny, device=device)
        size = sum(p.stat().st_size for p in (target / "model").iterdir())
        result["random_teacher_build"] = {
            **summary,
            "wall_s": round(time.perf_counter() - t0, 1),
            "gib_on_disk": round(size / 2**30, 2),
        }
        shutil.rmtree(target, ignore_errors=True)
        save()
    return result


# ------------------------------------------------------------------ main


def machine_info() -> dict[str, Any]:
    import torch
    import transformers

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    try:
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("student", "teacher", "all"), default="student")
    p.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu", "both"),
        default="auto",
        help="auto: cuda and cpu where there is a GPU, else cpu",
    )
    p.add_argument("--batch-sizes", default="16,64")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--warmup", type=int, default=5, help="CUDA warm-up steps (1 on the CPU)")
    p.add_argument("--steps", type=int, default=60, help="timed CUDA training steps")
    p.add_argument("--cpu-steps", type=int, default=10, help="timed CPU training steps")
    p.add_argument("--score-samples", type=int, default=4096, help="scored samples on CUDA")
    p.add_argument("--cpu-score-samples", type=int, default=512, help="scored samples on the CPU")
    p.add_argument("--max-seconds", type=float, default=20.0, help="stop a measurement after this long")
    p.add_argument("--random-weights", action="store_true", help="random-init student even if weights exist")
    p.add_argument("--teacher-tiny", action="store_true", help="step 3 with random_teacher's 2-layer shape")
    p.add_argument("--teacher-batch", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--teacher-repeats", type=int, default=2)
    p.add_argument(
        "--skip-build", action="store_true", help="step 3 without random_teacher.build (16 GB save)"
    )
    p.add_argument("--quick", action="store_true", help="a check in seconds: tiny sizes everywhere")
    p.add_argument("--out", type=Path, help="also write <part>.json here")
    args = p.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.max_length, args.warmup = "4,8", 32, 1
        args.steps, args.cpu_steps, args.score_samples, args.cpu_score_samples = 3, 2, 32, 16
        args.teacher_batch, args.new_tokens, args.teacher_repeats = 2, 4, 1
        args.teacher_tiny = True
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    has_cuda = torch.cuda.is_available()
    if args.device in ("cuda", "both") and not has_cuda:
        print("gpu_student: --device cuda/both asked, but torch sees no CUDA device", file=sys.stderr)
        return 2
    devices = {
        "auto": ["cuda", "cpu"] if has_cuda else ["cpu"],
        "both": ["cuda", "cpu"],
        "cuda": ["cuda"],
        "cpu": ["cpu"],
    }[args.device]
    info = machine_info()
    print("machine: " + json.dumps(info), flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)

    if args.part in ("student", "all"):
        info["max_length"] = args.max_length
        results = run_student(args, devices, info)
        table = student_table(results)
        print(table, flush=True)
        if args.out:
            (args.out / "student.json").write_text(
                json.dumps({"info": info, "results": results}, indent=1) + "\n"
            )
            (args.out / "student_table.txt").write_text(table + "\n")
    if args.part in ("teacher", "all"):
        device = "cuda" if has_cuda and args.device != "cpu" else "cpu"
        if device == "cpu" and not args.teacher_tiny:
            print(
                "gpu_student: the full-size teacher needs a GPU; use --teacher-tiny on a CPU", file=sys.stderr
            )
            return 2
        run_teacher(args, device, info, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
