"""Lightning callbacks: weight export, and (later) TensorBoard dashboards and checks."""

from callbacks.weights_export import WeightsExport

__all__ = ["WeightsExport"]
