"""Shared helpers: interleaved timing, paired ratios, memory readings, machine info.

The benchmark machine may be shared with other jobs, so absolute times drift. Every
comparison therefore runs its cases interleaved (A B, B A, A B, ...) in one process and
reports the median of the per-repeat ratios: load that changes slowly hits both sides of
a pair about equally and cancels out of the ratio.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import time
from typing import Any, Callable, Mapping


def interleaved(cases: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each case, ``repeats`` times, alternating the order every round."""
    items = list(cases.items())
    for _ in range(warmup):
        for _, fn in items:
            fn()
    times: dict[str, list[float]] = {name: [] for name, _ in items}
    for r in range(repeats):
        for name, fn in items if r % 2 == 0 else items[::-1]:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over repeats of ``num[i] / den[i]`` (both measured in the same round)."""
    return statistics.median(a / b for a, b in zip(num, den))


def spread(xs: list[float]) -> str:
    """``min-max`` of a list of ratios or times, to show how noisy a number was."""
    def f(x: float) -> str:
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"

    return f"{f(min(xs))}–{f(max(xs))}"


def rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS since start or last reset) of this process in MiB (Linux)."""
    cur = peak = float("nan")
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    cur = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return cur, peak


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, str]:
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "CPU": cpu_model(),
        "CPU count": f"{os.cpu_count()} (usable by this process: {usable})",
        "torch threads": str(torch.get_num_threads()),
        "load average (1/5/15 min) at start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "OS": f"{platform.system()} {platform.release()}",
    }
    for name in ("torchvision", "cv2", "decord", "torchcodec", "av"):
        try:
            mod = __import__(name)
            info[name] = getattr(mod, "__version__", "?")
        except Exception as e:  # a missing optional decoder must not stop the report
            info[name] = f"unavailable ({type(e).__name__})"
    info["CUDA"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU run)"
    return info
