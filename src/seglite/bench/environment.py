"""What the numbers were measured on: CPU, cores, load, versions."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any


def cpu_name() -> str:
    """The CPU's marketing name, shortened ("AMD EPYC 7B13", "Apple M2"), or the arch."""
    name = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if not name and sys.platform == "darwin":
        import subprocess

        try:
            name = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            name = ""
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    for junk in ("(R)", "(TM)", "(tm)", " CPU", " Processor", " processor"):
        name = name.replace(junk, "")
    return " ".join(name.split(" @ ")[0].split())


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Machine and library versions, printed and stored with every result."""
    from .. import __version__

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    libs = {"seglite": __version__}
    for dist in ("numpy", "Pillow", "ai-edge-litert", "onnxruntime", "torch"):
        libs[dist] = _version(dist)
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_avg": load,
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "libraries": {k: v for k, v in libs.items() if v is not None},
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def describe_environment(env: dict[str, Any]) -> str:
    """One line: the machine, its load, and the library versions."""
    libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items())
    load = f", load {env['load_avg'][0]}" if env.get("load_avg") else ""
    return (
        f"{env['cpu']}, {env['usable_cores']}/{env['cores']} cores usable{load}; "
        f"{env['platform']}; Python {env['python']}; {libs}"
    )
