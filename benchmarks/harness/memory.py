"""Resident-memory probes: this process's RSS and high-water mark, and a child command's peak RSS.

Standard library only: :func:`measure_in_fresh_process` runs this file as a script, so that
each measured command is the only child of its helper (see :func:`measure_one`).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time


def status_kib(field: str, pid: int | str = "self") -> int | None:
    """A ``kB`` field of ``/proc/PID/status`` (e.g. VmRSS, VmHWM); None where it cannot be read
    (no procfs, or the process has just exited)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss() -> int:
    """This process's resident set size in bytes (0 where unknown)."""
    return (status_kib("VmRSS") or 0) * 1024


def peak() -> int:
    """This process's RSS high-water mark in bytes since start or the last :func:`reset_peak`."""
    return (status_kib("VmHWM") or 0) * 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so :func:`peak` covers only what follows.
    False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def measure_one(command: list[str], sample_every: float = 0.25) -> dict:
    """Run ``command``; return its exit code, wall and CPU time, peak RSS (RUSAGE_CHILDREN) and RSS samples.

    Call it in a process that has run no other child: ``ru_maxrss`` of RUSAGE_CHILDREN
    is the largest peak over all children waited for so far.
    """
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, int]] = []

    def sample() -> None:  # whether RSS climbs during the run (a leak) or reaches a plateau
        while child.poll() is None:
            kib = status_kib("VmRSS", child.pid)
            if kib is not None:
                samples.append((round(time.perf_counter() - start, 2), kib))
            time.sleep(sample_every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = child.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = usage.ru_maxrss  # KiB on Linux
    return {"returncode": child.returncode, "wall_s": round(wall, 2), "peak_rss_mib": round(peak_kib / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),  # steadier than wall time on a shared machine
            "peak_rss_bytes": peak_kib * 1024,
            "samples_kib": samples, "stderr_tail": stderr.decode("utf-8", "replace")[-500:]}


def measure_in_fresh_process(command: list[str]) -> dict:
    """:func:`measure_one` in a helper process, so each command gets a RUSAGE_CHILDREN of its own."""
    helper = subprocess.run([sys.executable, __file__, json.dumps(command)], capture_output=True, text=True,
                            check=True)
    return json.loads(helper.stdout)


def child_peak_rss(command: list[str]) -> tuple[int, float]:
    """Peak RSS (bytes) and wall seconds of ``command``, which must succeed."""
    result = measure_in_fresh_process(command)
    if result["returncode"] != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({result['returncode']}): {result['stderr_tail']}")
    return result["peak_rss_bytes"], result["wall_s"]


if __name__ == "__main__":  # the helper side of measure_in_fresh_process
    print(json.dumps(measure_one(json.loads(sys.argv[1]))))
