"""Write ``benchmarks/results/threads.txt`` whole: the four cases of ``threads.py`` (a fit and a
grid search, at fusekit's default threads and at torch's), each in a fresh process, with that
process's CPU time, wall time and peak memory.

    python benchmarks/speed/threads_report.py [--epochs 20] [--cases fit search] > threads.txt

Each case runs as ``python benchmarks/speed/threads.py CASE --threads THREADS`` and is measured
as ``/usr/bin/time -v`` measures a command, from the ``os.wait4`` resource usage of the child:
user and system time, the share of a CPU it got ((user + system) / wall), wall clock, and
maximum resident set size. ``wait4`` counts the child and the descendants it waited for (the
loky workers of the search), as GNU time does. Linux carries a parent's peak RSS into a child
it starts, so this driver imports nothing heavy until the last case has run; the provenance
header (which imports torch) is written after the measurements, at the top of the report. The
fits are seeded: each pair of default / torch runs must print the same score, and the report
says whether they did.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THREADS = Path(__file__).with_name("threads.py")
TIMEOUT_S = 900
SCORE = re.compile(r"score (\d+\.\d+)")


@dataclass(frozen=True)
class Usage:
    """What ``/usr/bin/time -v`` reports of one process (and its waited-for descendants)."""

    output: str  # the case's own line
    user_s: float
    system_s: float
    wall_s: float
    max_rss_kb: int

    def lines(self) -> list[str]:
        minutes, seconds = divmod(self.wall_s, 60)
        share = 100 * (self.user_s + self.system_s) / self.wall_s
        return [
            self.output,
            f"\tUser time (seconds): {self.user_s:.2f}",
            f"\tSystem time (seconds): {self.system_s:.2f}",
            f"\tPercent of CPU this job got: {share:.0f}%",
            f"\tElapsed (wall clock) time (h:mm:ss or m:ss): {int(minutes)}:{seconds:05.2f}",
            f"\tMaximum resident set size (kbytes): {self.max_rss_kb}",
        ]


def run_case(case: str, threads: str, epochs: int) -> Usage:
    """One case of ``threads.py`` in a fresh process, with this checkout first on the path;
    killed after ``TIMEOUT_S`` seconds."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    argv = [sys.executable, str(THREADS), case, "--threads", threads, "--epochs", str(epochs)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT, env=env)
        watchdog = threading.Timer(TIMEOUT_S, process.kill)
        watchdog.start()
        try:  # os.wait4, not Popen.wait: it returns the child's resource usage
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        output, stderr = out.read().strip(), err.read()
    if process.returncode != 0:
        killed = f" (killed: it ran past {TIMEOUT_S} s)" if wall >= TIMEOUT_S else ""
        raise RuntimeError(
            f"{' '.join(argv[1:])} exited {process.returncode}{killed}:\n{stderr[-4000:]}"
        )
    return Usage(output, usage.ru_utime, usage.ru_stime, wall, usage.ru_maxrss)


def scores_agree(runs: dict[tuple[str, str], Usage]) -> list[str]:
    """One line per case: do the default and torch threads give the same score (seeded fits)?"""
    lines = []
    for case in dict.fromkeys(case for case, _ in runs):
        found = {
            threads: SCORE.search(runs[case, threads].output) for threads in ("default", "torch")
        }
        scores = {t: m.group(1) if m else "?" for t, m in found.items() if (case, t) in runs}
        same = len(set(scores.values())) == 1 and "?" not in scores.values()
        lines.append(
            f"{case}: score {' and '.join(scores.values())} "
            + ("(the same at both thread settings, checked)" if same else "(SCORES DIFFER)")
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="threads.py --epochs")
    parser.add_argument("--cases", nargs="+", choices=["fit", "search"], default=["fit", "search"])
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    runs = {
        (case, threads): run_case(case, threads, args.epochs)
        for case in args.cases
        for threads in ("default", "torch")
    }
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import provenance  # imports torch: only after the last measurement

    lines = provenance.header_lines()
    lines.append(
        f"each case: python benchmarks/speed/threads.py CASE --threads THREADS --epochs "
        f"{args.epochs}, a fresh process; its figures in the layout of /usr/bin/time -v, from "
        f"os.wait4 (the process and the workers it waited for); 1-minute load average "
        f"{load_before:.1f} before the first case, {os.getloadavg()[0]:.1f} after the last "
        f"(other processes share the cores: the situation fusekit's default of one thread is for)"
    )
    for (case, threads), usage in runs.items():
        lines += [f"== {case} {threads}", *usage.lines()]
    lines += scores_agree(runs)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
