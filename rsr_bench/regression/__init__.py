"""Regression checks of released checkpoints against committed baselines (``rsr-bench check``).

Modules: :mod:`.baseline` (the baseline file, tolerances), :mod:`.measure` (evaluate into or
read a store), :mod:`.compare` (comparison, diff table, exit codes), :mod:`.junit` (JUnit XML)
and :mod:`.gate` (:func:`check` and :func:`update_baseline`, what the command calls).
"""

from .baseline import (FORMAT, Baseline, CheckSetupError, Entry, Selection, Tolerance, build_baseline, default_tolerances,
                       device_kind, dump_baseline, load_baseline, parse_tolerance_option, save_baseline)
from .compare import EXIT_OK, EXIT_REGRESSION, EXIT_SETUP, CheckResult, Comparison, check_measurement, diff_table
from .gate import check, update_baseline
from .junit import write_check, write_setup_error
from .measure import MeasureOptions, Measured, measure_selection, read_store

__all__ = [
    "EXIT_OK", "EXIT_REGRESSION", "EXIT_SETUP", "FORMAT", "Baseline", "CheckResult", "CheckSetupError", "Comparison",
    "Entry", "MeasureOptions", "Measured", "Selection", "Tolerance", "build_baseline", "check", "check_measurement",
    "default_tolerances", "device_kind", "diff_table", "dump_baseline", "load_baseline", "measure_selection",
    "parse_tolerance_option", "read_store", "save_baseline", "update_baseline", "write_check", "write_setup_error",
]
