"""What the benchmark reads from /proc: a process's CPU time and memory, and the machine.

Linux only (psutil is not a dependency). CPU time is utime + stime in clock ticks, so its
resolution is 1/SC_CLK_TCK (10 ms at the usual 100 Hz): fine over thousands of requests.
A process's figures include its descendants' (`serve --workers N`: the supervisor, its N
workers and multiprocessing's resource tracker); a one-worker `serve` has none. A server's
CPU time (`server_cpu_seconds`: PostgreSQL's) is every process of that name's, whoever
started them (we run as root, so their /proc is readable).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcessSample:
    cpu_seconds: float  # user + system, since the process started
    peak_rss_mb: float  # VmHWM: the high-water mark of the resident set (summed: a bound)
    rss_mb: float  # VmRSS: resident now
    processes: int = 1


def sample(pid: int) -> ProcessSample:
    """`pid` and its descendants, summed (a descendant gone meanwhile is left out)."""
    cpu_seconds = peak_kb = rss_kb = 0.0
    pids = [pid, *descendants(pid)]
    for each in pids:
        try:
            cpu_seconds += _stat_fields(each)[0]
            memory = _status_kb(each, ("VmHWM", "VmRSS"))
        except (FileNotFoundError, ProcessLookupError, KeyError):
            if each == pid:
                raise
            continue
        peak_kb += memory["VmHWM"]
        rss_kb += memory["VmRSS"]
    return ProcessSample(cpu_seconds, peak_kb / 1024, rss_kb / 1024, len(pids))


def _stat_fields(pid: int, *, reaped: bool = False) -> tuple[float, int]:
    """(CPU seconds, parent pid) from /proc/<pid>/stat; with `reaped`, the CPU seconds
    include those of its children that exited and were waited for (cutime + cstime)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; fields after its ")" are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS, int(fields[1])


def server_cpu_seconds(comm: str = "postgres") -> float:
    """User + system CPU time of every process named `comm` (PostgreSQL's postmaster, its
    backends, WAL writer, checkpointer ...), including their children that exited: a
    backend that closed between two samples has been reaped by the postmaster, whose
    cutime/cstime then holds its time, so the difference of two samples is the whole
    server's work in between."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().rstrip("\n") == comm:
                total += _stat_fields(int(entry.name), reaped=True)[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def descendants(pid: int) -> list[int]:
    """Every process under `pid`, from each process's parent in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = _stat_fields(int(entry.name))[1]
            except (FileNotFoundError, ProcessLookupError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _status_kb(pid: int, names: tuple[str, ...]) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in names:
            values[name] = int(rest.split()[0])
    return values


@dataclass(frozen=True, slots=True)
class Machine:
    cpu_model: str
    cores: int
    ram_gb: float
    kernel: str
    python: str
    date: str
    load_average: str  # 1, 5 and 15 minutes, when the run started: was the machine busy?


def machine() -> Machine:
    return Machine(
        cpu_model=_cpu_model(),
        cores=len(os.sched_getaffinity(0)),
        ram_gb=round(_meminfo_kb("MemTotal") / 1024 / 1024, 1),
        kernel=platform.release(),
        python=sys.version.split()[0],
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_average=" ".join(Path("/proc/loadavg").read_text().split()[:3]),
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def _meminfo_kb(name: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key == name:
            return int(rest.split()[0])
    return 0
