"""The process's resident memory from /proc (None where the platform has no /proc)."""

from __future__ import annotations

import sys


def _proc_status() -> dict[str, int]:
    """VmRSS / VmHWM in kB from /proc/self/status (Linux); empty elsewhere."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def rss_mb() -> float | None:
    """Current resident set size in MB (None where the OS does not say)."""
    kb = _proc_status().get("VmRSS")
    if kb is not None:
        return kb / 1024
    try:
        import psutil  # optional; not a dependency

        return psutil.Process().memory_info().rss / 2**20
    except Exception:
        return None


def peak_mb() -> float | None:
    """Peak resident set size of this process in MB: VmHWM, else ru_maxrss."""
    kb = _proc_status().get("VmHWM")
    if kb is not None:
        return kb / 1024
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError):
        return None
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB on Linux


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so a later peak is this phase's own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
