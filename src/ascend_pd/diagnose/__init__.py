"""`ascend-pd diagnose`: match logs against a catalogue of known P/D failures."""

from __future__ import annotations

from ascend_pd.diagnose.catalogue import (
    Catalogue,
    Entry,
    Match,
    Signature,
    diagnose_text,
    load_catalogue,
)
from ascend_pd.diagnose.report import (
    DiagnoseReport,
    diagnose_logs,
    instance_log_path,
    read_instance_logs,
    read_log_files,
)

__all__ = [
    "Catalogue",
    "DiagnoseReport",
    "Entry",
    "Match",
    "Signature",
    "diagnose_logs",
    "diagnose_text",
    "instance_log_path",
    "load_catalogue",
    "read_instance_logs",
    "read_log_files",
]
