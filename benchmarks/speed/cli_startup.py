"""Start-up cost of the command line and of ``import fusekit``: wall time and peak memory (max
RSS) of ``python -m fusekit --help``, ``fusekit bench --help`` and ``fusekit plugins``, next to
loading the plugins alone and ``import torch`` alone, and the ``python -X importtime`` total of
``import fusekit`` and ``from fusekit import FusionClassifier``. Each is a fresh interpreter;
medians of ``--runs`` runs. Writes ``benchmarks/results/cli_startup.md`` whole.

    python benchmarks/speed/cli_startup.py [--runs 3] [--before DIR --before-label TEXT]

``--before DIR``: another checkout of fusekit (``git archive COMMIT | tar -x -C DIR``) measured
in the same runs, alternating with this one, as a "before" column. Max RSS and CPU time come from
GNU time (``/usr/bin/time``, a small parent); without it, from ``os.wait4`` (Linux carries the
peak RSS across exec, so this script imports nothing heavy before its last measurement).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
RESULTS = HERE / "benchmarks" / "results" / "cli_startup.md"
TIMEOUT_S = 300
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")

LOAD_PLUGINS = "from fusekit.engine.registry import get_registry; get_registry().entries()"


@dataclass(frozen=True)
class Command:
    """One measured command: its arguments after ``python`` and what is read from a run."""

    label: str
    args: tuple[str, ...]
    importtime: bool = False  # read the -X importtime total instead of the process's memory


COMMANDS = (
    Command("`python -m fusekit --help`", ("-m", "fusekit", "--help")),
    Command("`python -m fusekit bench --help`", ("-m", "fusekit", "bench", "--help")),
    Command("`python -m fusekit plugins`", ("-m", "fusekit", "plugins")),
    Command(f'`python -c "{LOAD_PLUGINS}"` (the plugins alone)', ("-c", LOAD_PLUGINS)),
    Command('`python -c "import torch"` (reference)', ("-c", "import torch")),
    Command(
        '`python -X importtime -c "import fusekit"`',
        ("-X", "importtime", "-c", "import fusekit"),
        importtime=True,
    ),
    Command(
        '`python -X importtime -c "from fusekit import FusionClassifier"`',
        ("-X", "importtime", "-c", "from fusekit import FusionClassifier"),
        importtime=True,
    ),
)


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system
    max_rss_mib: float
    importtime_s: float | None


def importtime_total(stderr: str) -> float:
    """Seconds of imports from fusekit's first on: the sum of the cumulative times of the
    top-level imports (``-X importtime`` indents nested ones) from the first ``fusekit`` one."""
    total_us, counting = 0, False
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith(" ") and not name[1:2].isspace():  # top level: one space, then name
            counting = counting or name.strip().startswith("fusekit")
            if counting and cumulative.strip().isdigit():
                total_us += int(cumulative)
    if not counting:
        raise RuntimeError(f"no fusekit import in the -X importtime output:\n{stderr[-2000:]}")
    return total_us / 1e6


def measure(root: Path, command: Command) -> Run:
    """One run of ``command`` with ``root``'s fusekit first on the path, from ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("w+", suffix=".time") as usage_file,
    ):
        python = [sys.executable, *command.args]
        if GNU_TIME:  # CPU seconds and peak RSS in KiB, written to its own file
            python = [GNU_TIME, "-f", "%U %S %M", "-o", usage_file.name, *python]
        start = time.perf_counter()
        process = subprocess.Popen(python, stdout=out, stderr=err, cwd=root, env=env)
        watchdog = threading.Timer(TIMEOUT_S, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        stderr = err.read()
        if GNU_TIME:
            user, system, rss_kib = usage_file.read().split()[-3:]
            cpu, rss_mib = float(user) + float(system), int(rss_kib) / 1024
        else:
            cpu = usage.ru_utime + usage.ru_stime
            rss_mib = usage.ru_maxrss / (1024 if sys.platform != "darwin" else 1024**2)
    if process.returncode != 0:
        raise RuntimeError(f"{command.label} in {root} exited {process.returncode}:\n{stderr}")
    return Run(wall, cpu, rss_mib, importtime_total(stderr) if command.importtime else None)


def medians(runs: list[Run]) -> dict[str, float | None]:
    imports = [r.importtime_s for r in runs if r.importtime_s is not None]
    return {
        "wall_s": statistics.median(r.wall_s for r in runs),
        "cpu_s": statistics.median(r.cpu_s for r in runs),
        "max_rss_mib": statistics.median(r.max_rss_mib for r in runs),
        "importtime_s": statistics.median(imports) if imports else None,
    }


def git_label(root: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or str(root)


def table(
    checkouts: dict[str, Path], results: dict[tuple[str, str], dict[str, float | None]]
) -> list[str]:
    names = list(checkouts)
    lines = [
        "| command | measure | " + " | ".join(names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for command in COMMANDS:
        measures = [("wall s", "wall_s", "{:.2f}"), ("CPU s", "cpu_s", "{:.2f}")]
        if command.importtime:
            measures.insert(0, ("import time s", "importtime_s", "{:.3f}"))
        else:
            measures.append(("max RSS MiB", "max_rss_mib", "{:.0f}"))
        for title, key, form in measures:
            cells = [form.format(results[command.label, name][key]) for name in names]
            lines.append(f"| {command.label} | {title} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another fusekit checkout to compare with")
    parser.add_argument("--before-label", help="its name in the table (default: the path)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    checkouts = {}
    if args.before:
        checkouts[f"before ({args.before_label or args.before})"] = args.before.resolve()
    checkouts[f"this checkout ({git_label(HERE)})"] = HERE
    runs: dict[tuple[str, str], list[Run]] = {}
    for _ in range(args.runs):  # the checkouts alternate, so a slow spell hits both alike
        for command in COMMANDS:
            for name, root in checkouts.items():
                runs.setdefault((command.label, name), []).append(measure(root, command))
    results = {key: medians(value) for key, value in runs.items()}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import provenance  # torch: only after the last measurement

    tool = "GNU time (`/usr/bin/time`)" if GNU_TIME else "`os.wait4`"
    text = "\n".join(
        [
            "# Command-line start-up and the cost of `import fusekit`",
            "",
            "```",
            *provenance.header_lines(),
            "```",
            "",
            f"Medians of {args.runs} runs; each command is a fresh interpreter started from the "
            "checkout's root with it first on `PYTHONPATH`. Wall time includes interpreter "
            f"start-up; CPU is user + system time and max RSS the peak resident memory, both "
            f"from {tool}; import time is the `-X importtime` total of the imports from "
            "fusekit's first on. Wall times on a shared machine vary from run to run; CPU time "
            "varies less.",
            "",
            *table(checkouts, results),
            "",
            "This file is written entirely by benchmarks/speed/cli_startup.py.",
            "",
        ]
    )
    print(text)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
