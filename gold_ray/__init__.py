"""gold_ray: GOLD (OOD-guided data generation for knowledge distillation) on Ray."""

__version__ = "0.1.0"
