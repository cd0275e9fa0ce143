"""HTML reports of runs: one per run (written when training ends), and runs compared."""

from .run_report import REPORT_FILE, write_comparison, write_report

__all__ = ["REPORT_FILE", "write_comparison", "write_report"]
