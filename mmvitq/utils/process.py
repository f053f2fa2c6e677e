"""Run a tool as a subprocess and measure it: wall time and peak resident memory, as the OS reports them."""
import os
import subprocess
import time
from typing import Optional


def run_measured(cmd: list[str], log_file: str, cwd: Optional[str] = None) -> tuple[float, float]:
    """Run `cmd` with its output in `log_file`; returns (wall seconds, peak RSS in MiB) or raises RuntimeError."""
    start = time.perf_counter()
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise RuntimeError(f'{" ".join(cmd)} failed (exit {code}); see {log_file}')
    return time.perf_counter() - start, usage.ru_maxrss / 1024  # Linux reports KiB
