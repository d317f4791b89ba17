"""Memory and CPU of the stack's processes (and their children), read from /proc.

- peak resident memory of each process: ``VmHWM`` in /proc/<pid>/status (the kernel's
  high-water mark, so a peak between two samples is not missed), summed over its children;
- the whole stack's peak at one moment: a sampler thread adds up, a few times a second, the
  resident memory of every process in the tree (``VmRSS``), and their proportional set size
  (``Pss`` in /proc/<pid>/smaps_rollup: pages shared between processes, such as those of
  forked workers, counted once in all); reading smaps_rollup costs ~20 ms of CPU for each of
  Rasa's processes, on the cores the stack is measured on, so the PSS is read every
  ``pss_every``-th sample (every 5 s) and at the end, the resident memory every sample;
- CPU seconds (user + system) per process tree, so a level's CPU per turn can be split
  between Rasa, the action server, the web app and the load generator.
"""

import os
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _stat_fields(pid: int) -> Optional[List[str]]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from "state" on


def children_map() -> Dict[int, List[int]]:
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int, children: Optional[Dict[int, List[int]]] = None) -> List[int]:
    """The process and every process below it."""
    children = children_map() if children is None else children
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_seconds(pid: int, children: Optional[Dict[int, List[int]]] = None) -> float:
    """User + system CPU of a process and its live descendants."""
    total = 0.0
    for p in descendants(pid, children):
        fields = _stat_fields(p)
        if fields:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    return total


class Sampler:
    """Samples the total resident memory of some process trees until stopped."""

    def __init__(self, pids: Dict[str, int], interval_s: float = 0.5, pss_every: int = 10) -> None:
        self.pids = dict(pids)
        self.interval_s = interval_s
        self.pss_every = pss_every
        self._samples = 0
        self.peak_total_mb = 0.0
        self.peak_total_pss_mb = 0.0
        self.peak_each_mb: Dict[str, float] = {name: 0.0 for name in pids}
        self.hwm_mb: Dict[str, float] = {name: 0.0 for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.peak_each_mb.setdefault(name, 0.0)
        self.hwm_mb.setdefault(name, 0.0)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def sample(self, pss: Optional[bool] = None) -> None:
        if pss is None:
            pss = self._samples % self.pss_every == 0
        self._samples += 1
        total = total_pss = 0.0
        children = children_map()
        for name, pid in list(self.pids.items()):
            tree = descendants(pid, children)
            now = sum(_status_kb(p, "VmRSS") for p in tree) / 1024
            total += now
            if pss:
                total_pss += sum(_pss_kb(p) for p in tree) / 1024
            self.peak_each_mb[name] = max(self.peak_each_mb[name], now)
            self.hwm_mb[name] = max(self.hwm_mb[name], sum(_status_kb(p, "VmHWM") for p in tree) / 1024)
        self.peak_total_mb = max(self.peak_total_mb, total)
        self.peak_total_pss_mb = max(self.peak_total_pss_mb, total_pss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample(pss=True)

    def report(self) -> Dict[str, object]:
        return {
            "peak_rss_mb": {name: round(mb, 1) for name, mb in self.hwm_mb.items()},
            "peak_rss_sum_mb": round(sum(self.hwm_mb.values()), 1),
            "peak_total_sampled_mb": round(self.peak_total_mb, 1),
            "peak_total_pss_mb": round(self.peak_total_pss_mb, 1),
        }


def runqueue_wait_s(pid: int) -> float:
    """Time the process's main thread spent ready to run but waiting for a CPU (schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def machine_ticks() -> Dict[str, int]:
    """Whole-machine CPU time so far (/proc/stat), in clock ticks: busy, and steal (time the
    hypervisor gave this VM's CPUs to someone else)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return {"busy": user + nice + system + irq + softirq, "steal": steal}


class CpuMeter:
    """CPU seconds used by each process tree (and this process) between two points."""

    def __init__(self, pids: Dict[str, int]) -> None:
        self.pids = pids
        self.start = self._read()
        self.start_wait = {name: runqueue_wait_s(pid) for name, pid in pids.items()}
        self.start_machine = machine_ticks()

    def machine(self) -> Dict[str, float]:
        """Cores in use on average since the start: by all work on the machine, and stolen."""
        end, wall = machine_ticks(), time.monotonic() - self.start["_wall"]
        return {k: round((end[k] - self.start_machine[k]) / CLK_TCK / wall, 2) for k in ("busy", "steal")}

    def waited(self) -> Dict[str, float]:
        """Seconds each main thread waited for a CPU since the start (a busy machine shows here)."""
        return {name: runqueue_wait_s(pid) - self.start_wait[name] for name, pid in self.pids.items()}

    def _read(self) -> Dict[str, float]:
        children = children_map()
        values = {name: cpu_seconds(pid, children) for name, pid in self.pids.items()}
        t = os.times()
        values["load generator"] = t.user + t.system
        values["_wall"] = time.monotonic()
        return values

    def stop(self) -> Dict[str, float]:
        end = self._read()
        return {name: end[name] - self.start.get(name, 0.0) for name in end}
