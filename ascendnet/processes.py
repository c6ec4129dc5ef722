"""Stopping a child process we started: by its PID only, politely first."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    """Send `sig`, then SIGKILL if it has not exited within `timeout` seconds. Returns its exit
    status (at once when it had already exited)."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            proc.wait(timeout=timeout)
    return int(proc.returncode)
