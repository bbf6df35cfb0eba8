"""Task specs: the `task:` block of a config (see spec.py)."""

from gold_ray.tasks.spec import EvalSpec, FieldSpec, LabelSpec, TaskSpec

__all__ = ["EvalSpec", "FieldSpec", "LabelSpec", "TaskSpec"]
