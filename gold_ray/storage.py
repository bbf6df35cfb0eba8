"""Run output to a storage URI (``--out s3://bucket/runs/x``, ``gs://``, ``file://``, ...).

The run directory itself stays on local disk (a *staging* directory): vLLM, Ray Train and
the atomic renames of :mod:`gold_ray.rundir` need a POSIX filesystem. What the run publishes
is mirrored to the URI through ``pyarrow.fs`` (the filesystems Ray itself uses for cloud
storage), so any scheme pyarrow opens works, with the credentials pyarrow finds (instance
roles, service accounts, the usual environment variables; never in a config).

Object stores have no rename, so a round cannot appear atomically; instead each round is
uploaded in an order that makes a cut-off upload detectable: the round's files (its student
included) first, ``round.json`` last. A remote round without ``round.json`` is incomplete:
``pull`` (``--resume``) ignores it and the round is run again, replacing what was uploaded.

Remote layout = the local run directory, except the ``student`` link: at the end the latest
student is copied to ``URI/student/`` (the export a user downloads), beside
``metrics.jsonl``, ``teacher_eval.json``, ``summary.json``, ``report.html`` and ``report/``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from gold_ray.errors import UserError
from gold_ray.rundir import ROUNDS, STUDENT, STUDENT_MEAN, RunDir, round_name, same_run_config

MARKER = "round.json"  # written last: a remote round is complete once it exists
HEADER_FILES = ("config.yaml", "run.json")
RUN_FILES = ("teacher_eval.json",)  # written once during the run; kept across resumes
FINAL_FILES = ("metrics.jsonl", "summary.json", "report.html")
FINAL_DIRS = ("report",)
STAGING_ENV = "GOLD_RAY_STAGING"


def is_uri(out: str | os.PathLike[str]) -> bool:
    """Whether ``--out`` names a storage URI (``scheme://...``) rather than a local path."""
    return "://" in str(out)


def staging_dir(uri: str, base: str | os.PathLike[str] | None = None) -> Path:
    """The local run directory that mirrors ``uri``: under ``base``, else $GOLD_RAY_STAGING,
    else the system temp dir. One per URI (a readable slug plus a hash), so a resume on the
    same machine finds the same place and two URIs never share one."""
    root = Path(base or os.environ.get(STAGING_ENV) or Path(tempfile.gettempdir()) / "gold_ray-staging")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", uri.split("://", 1)[-1]).strip("_")[-60:] or "run"
    return root.expanduser().resolve() / f"{slug}-{hashlib.sha1(uri.encode()).hexdigest()[:10]}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class Mirror:
    """Uploads a local run directory's published parts to ``uri``; downloads it for a resume."""

    def __init__(self, uri: str):
        import pyarrow as pa
        import pyarrow.fs as pafs

        self.uri = uri.rstrip("/")
        try:
            self.fs, root = pafs.FileSystem.from_uri(self.uri)
        except pa.ArrowInvalid as exc:  # unknown scheme, or a malformed URI
            raise UserError(
                f"--out {uri}: not a storage URI pyarrow can open ({_first_line(exc)}); use a local path "
                f"or s3://, gs://, hdfs://, abfs:// or an absolute file:///path"
            ) from None
        except (OSError, pa.ArrowException) as exc:  # e.g. missing credentials, bad options
            raise UserError(f"--out {uri}: cannot open the store: {_first_line(exc)}") from None
        self.root = root.rstrip("/")
        self.local_fs = pafs.LocalFileSystem()
        self._probe()

    def _probe(self) -> None:
        """Fail before any actor starts when the store cannot be reached (a wrong endpoint,
        no network, no permission), not after the first round's work."""
        try:
            self.fs.get_file_info(self.root)
        except OSError as exc:
            raise UserError(f"--out {self.uri}: the store is unreachable: {_first_line(exc)}") from None

    # ---------------------------------------------------------------- paths

    def _remote(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def url(self, *parts: str) -> str:
        """The URI of a file or folder of the run (for logs and the summary)."""
        return "/".join([self.uri, *parts])

    def _exists(self, *parts: str) -> bool:
        import pyarrow.fs as pafs

        return self.fs.get_file_info(self._remote(*parts)).type != pafs.FileType.NotFound

    def has_run(self) -> bool:
        return self._exists("config.yaml")

    def read_text(self, *parts: str) -> str:
        with self.fs.open_input_stream(self._remote(*parts)) as stream:
            return stream.read().decode("utf-8")

    # ---------------------------------------------------------------- upload

    def _put(self, local: Path, *parts: str) -> None:
        import pyarrow.fs as pafs

        remote = self._remote(*parts)
        self.fs.create_dir(remote.rsplit("/", 1)[0], recursive=True)  # a no-op marker on object stores
        pafs.copy_files(str(local), remote, source_filesystem=self.local_fs, destination_filesystem=self.fs)

    def _put_tree(self, local_dir: Path, *parts: str, skip: tuple[str, ...] = ()) -> None:
        """Every file under ``local_dir`` (links not followed), except top-level ``skip`` names."""
        for dirpath, dirnames, filenames in os.walk(local_dir):
            dirnames.sort()
            rel = Path(dirpath).relative_to(local_dir).parts
            for name in sorted(filenames):
                if not rel and name in skip:
                    continue
                self._put(Path(dirpath, name), *parts, *rel, name)

    def _delete_dir(self, *parts: str) -> None:
        if self._exists(*parts):
            self.fs.delete_dir(self._remote(*parts))

    def push_header(self, local_root: Path) -> None:
        """The run's config.yaml and run.json (once, when the run starts)."""
        self._put_files(local_root, HEADER_FILES)

    def _put_files(self, local_root: Path, names: tuple[str, ...]) -> None:
        for name in names:
            if (local_root / name).is_file():
                self._put(local_root / name, name)

    def push_round(self, local_root: Path, round_index: int) -> float:
        """Upload a published round, ``round.json`` last; then metrics.jsonl, and drop the
        previous round's students there as the local run directory does. Returns seconds."""
        start = time.perf_counter()
        name = round_name(round_index)
        src = local_root / ROUNDS / name
        self._delete_dir(ROUNDS, name)  # what a cut-off upload of this round left behind
        self._put_tree(src, ROUNDS, name, skip=(MARKER,))
        self._put_files(local_root, RUN_FILES)
        self._put(src / MARKER, ROUNDS, name, MARKER)
        if (local_root / "metrics.jsonl").is_file():
            self._put(local_root / "metrics.jsonl", "metrics.jsonl")
        if round_index > 0:
            for student in (STUDENT, STUDENT_MEAN):
                self._delete_dir(ROUNDS, round_name(round_index - 1), student)
        return time.perf_counter() - start

    def push_final(self, local_root: Path) -> None:
        """The end of a run: the latest student as URI/student/, the summary and the report."""
        student = local_root / "student"
        if student.is_dir():
            self._delete_dir("student")
            self._put_tree(student.resolve(), "student")
        self._put_files(local_root, RUN_FILES + FINAL_FILES)
        for name in FINAL_DIRS:
            if (local_root / name).is_dir():
                self._delete_dir(name)
                self._put_tree(local_root / name, name)

    # ---------------------------------------------------------------- download

    def complete_rounds(self) -> list[int]:
        """Remote rounds r00, r01, ... up to the first one without its marker."""
        import pyarrow.fs as pafs

        if not self._exists(ROUNDS):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self._remote(ROUNDS)))
        names = {i.base_name for i in infos if i.type == pafs.FileType.Directory}
        rounds: list[int] = []
        while round_name(len(rounds)) in names and self._exists(ROUNDS, round_name(len(rounds)), MARKER):
            rounds.append(len(rounds))
        return rounds

    def pull(self, local_root: Path) -> int:
        """Download the run's header and complete rounds into an empty ``local_root`` and
        rebuild what is local-only (the ``student`` link, metrics.jsonl). Returns the
        number of complete rounds."""
        import pyarrow.fs as pafs

        local_root.mkdir(parents=True, exist_ok=False)
        for name in HEADER_FILES + RUN_FILES:
            if self._exists(name):
                pafs.copy_files(self._remote(name), str(local_root / name),
                                source_filesystem=self.fs, destination_filesystem=self.local_fs)
        rounds = self.complete_rounds()
        for r in rounds:
            dst = local_root / ROUNDS / round_name(r)
            dst.mkdir(parents=True)
            # Recursive copy: pyarrow creates subfolders (student/) but not the top one.
            pafs.copy_files(self._remote(ROUNDS, round_name(r)), str(dst),
                            source_filesystem=self.fs, destination_filesystem=self.local_fs)
        run = RunDir(local_root)
        if rounds:
            run.link_student(rounds[-1])
            run.rebuild_metrics()
        return len(rounds)


def prepare_staging(mirror: Mirror, config_yaml: str, resume: bool, base: str | os.PathLike[str] | None = None) -> Path:
    """The local run directory for a run that writes to ``mirror``.

    The store is the truth and the staging copy only a working copy: it is emptied, and on
    ``resume`` refilled from the store. A store that holds a run is refused without
    ``resume`` or with a different config, as a local run directory is.
    """
    has_run = mirror.has_run()
    if has_run and not resume:
        raise UserError(f"{mirror.uri} already holds a run; pass --resume to continue it, or choose another --out")
    if has_run and not same_run_config(mirror.read_text("config.yaml"), config_yaml):
        raise UserError(
            f"{mirror.uri} holds a run with a different config; resume with the same config and --set "
            f"values (see {mirror.url('config.yaml')}), or choose another --out"
        )
    staging = staging_dir(mirror.uri, base)
    shutil.rmtree(staging, ignore_errors=True)
    if has_run:
        mirror.pull(staging)
    return staging
