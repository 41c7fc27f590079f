"""Lightning callbacks: weight export, TensorBoard dashboards, gradient check, F1 comparison."""

from callbacks.f1_comparison import F1Comparison
from callbacks.gradient_check import GradientCheck, GradientCheckError
from callbacks.tensorboard_dashboard import TensorBoardDashboard
from callbacks.weights_export import WeightsExport

__all__ = ["F1Comparison", "GradientCheck", "GradientCheckError", "TensorBoardDashboard", "WeightsExport"]
