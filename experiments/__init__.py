"""Every notebook experiment, run from configs in ``configs/experiments`` by :mod:`experiments.run_all`."""
