"""The `gold-ray` command line. Each subcommand is a small function; user errors print
one line and exit with status 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from gold_ray.errors import Terminated, UserError

EXIT_USER_ERROR = 2
EXIT_TERMINATED = 128 + 15  # what a shell reports for a process SIGTERM ended


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key by its dotted path, e.g. --set run.rounds=2 (repeatable)",
    )


def cmd_validate(args: argparse.Namespace) -> int:
    from gold_ray.config import load_config

    config = load_config(args.config, args.overrides)
    print(config.to_yaml(), end="")
    return 0


def cmd_prepare_models(args: argparse.Namespace) -> int:
    from gold_ray.embedded import EMBEDDED, cache_dir, prepare

    names = args.names or sorted(EMBEDDED)
    for name in names:
        print(f"{name}: {prepare(name)}", flush=True)
    print(f"cache: {cache_dir()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from gold_ray.config import load_config
    from gold_ray.runner import run

    overrides = list(args.overrides) + ([f"run.out_dir={args.out}"] if args.out else [])
    config = load_config(args.config, overrides)
    result = run(config, resume=args.resume, staging=args.staging)
    for name, value in result.final_eval.items():
        print(f"student {name}: {value:.4f}" if isinstance(value, float) else f"student {name}: {value}")
    for name, value in result.teacher_eval.items():
        if isinstance(value, float):
            print(f"teacher few-shot {name}: {value:.4f} (first {result.teacher_eval['n']} rows)")
    print(f"student: {result.summary['student']}")  # the URI's copy when --out is a URI
    print(f"report: {result.summary['report']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from gold_ray.report import write_report

    print(write_report(args.run_dir))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from gold_ray.config import load_config
    from gold_ray.evaluation import evaluate_student, format_result

    config = load_config(args.config, args.overrides)
    print(format_result(evaluate_student(args.checkpoint, config, file=args.file, limit=args.limit,
                                         confusion=args.confusion)))
    return 0


def cmd_eval_teacher(args: argparse.Namespace) -> int:
    from gold_ray.config import load_config
    from gold_ray.evaluation import format_result
    from gold_ray.teacher_eval import evaluate_teacher

    config = load_config(args.config, args.overrides)
    print(format_result(evaluate_teacher(config, file=args.file, limit=args.limit)))
    return 0


def _add_eval_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", help="labelled JSONL file (default: the config's task.eval.file)")
    parser.add_argument("--limit", type=int, help="evaluate the first N examples only (default: the config's task.eval.limit)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gold-ray", description="Distil a large language model into a small task model with GOLD."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check a config and print it resolved")
    _add_config_args(validate)
    validate.set_defaults(func=cmd_validate)

    run = sub.add_parser("run", help="run the GOLD loop (the `ray job submit` entrypoint)")
    _add_config_args(run)
    run.add_argument("--out", help="run directory or storage URI, e.g. s3://bucket/runs/x "
                     "(default: run.out_dir, else runs/<task>)")
    run.add_argument("--staging", help="with a URI --out: the local folder to stage the run in "
                     "(default: $GOLD_RAY_STAGING, else the system temp dir)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete round")
    run.set_defaults(func=cmd_run)

    report = sub.add_parser("report", help="write RUN_DIR/report.html with plots")
    report.add_argument("run_dir")
    report.set_defaults(func=cmd_report)
    ev = sub.add_parser("eval", help="score a student (or a run's latest student) on a labelled JSONL file")
    ev.add_argument("checkpoint", help="student checkpoint directory or run directory")
    ev.add_argument("--config", required=True, help="the run's YAML config (task, student)")
    ev.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key (repeatable)")
    _add_eval_args(ev)
    ev.add_argument("--confusion", action="store_true",
                    help="classification: also print, per gold label, how often each label was predicted")
    ev.set_defaults(func=cmd_eval)

    evt = sub.add_parser("eval-teacher", help="the teacher's few-shot score on a labelled JSONL file (vLLM)")
    _add_config_args(evt)
    _add_eval_args(evt)
    evt.set_defaults(func=cmd_eval_teacher)

    prep = sub.add_parser("prepare-models", help="prepare the embedded models in the cache (GOLD_RAY_CACHE)")
    prep.add_argument("names", nargs="*", help="embedded model names (default: all)")
    prep.set_defaults(func=cmd_prepare_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UserError as exc:
        print(f"gold-ray: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("gold-ray: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("gold-ray: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED


if __name__ == "__main__":
    sys.exit(main())
