"""Run an external simulator as a worker process: its own session, a
wall-clock limit, its peak memory sampled, its log captured and scanned.

Shared by the ngspice runner (`cosim.spice`) and the VACASK runner
(`cosim.vacask_run`): a crash or hang of the simulator never takes the
caller down.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

TIMED_OUT = -9999  # status of a run killed at its time limit


def scan_log(log: str, patterns: list[str], benign: list[str] = ()) -> list[str]:
    """Lines of `log` (stripped) matching any regex in `patterns`
    (lower-cased match), except those matching one in `benign`."""
    hits = []
    for line in log.splitlines():
        low = line.strip().lower()
        if any(re.search(b, low) for b in benign):
            continue
        if any(re.search(p, low) for p in patterns):
            hits.append(line.strip())
    return hits


def peak_rss(pid: int, seen: int) -> int:
    """Largest of `seen` and the process's memory high-water mark VmHWM (bytes).

    (ru_maxrss from wait4 is useless here: Linux carries the forking Python's
    peak across exec.)"""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return max(seen, int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return seen


def run_process(argv: list[str], cwd: Path, timeout_s: float, log_name: str = "run.log",
                env: dict[str, str] | None = None) -> tuple[int, str, float, int]:
    """Run argv in its own session in `cwd`, stdout and stderr into `cwd/log_name`.

    Returns (status, log, wall_s, peak_rss_bytes): status is the exit code,
    minus the signal number when killed by one, or TIMED_OUT when it ran past
    `timeout_s` seconds (its whole process group is then killed).
    """
    log_path = Path(cwd) / log_name
    start = time.perf_counter()
    peak = 0
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        delay = 0.001
        while True:
            peak = peak_rss(proc.pid, peak)
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.perf_counter() - start > timeout_s:
                os.killpg(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                code = TIMED_OUT
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        proc.returncode = code
    wall = time.perf_counter() - start
    return code, log_path.read_text(errors="replace"), wall, peak
