"""What bench/run.py and the scripts it starts share: CPU time of a process from /proc
(Linux), and the one-line JSON result each script prints."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def marked_json(output: str, marker: str) -> dict[str, Any] | None:
    """The JSON of the line a bench script prints as `MARKER {json}`, if it printed one."""
    for line in output.splitlines():
        if line.startswith(marker + " "):
            result: dict[str, Any] = json.loads(line[len(marker) + 1:])
            return result
    return None
