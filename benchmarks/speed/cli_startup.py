"""Start-up cost of the command line and of ``import fusekit``, as whole processes: wall time,
CPU time and peak memory (max RSS) of ``fusekit --help``, ``fusekit bench --help``, ``fusekit
plugins``, ``fusekit datasets --no-load`` and ``python -c "import fusekit"``, next to loading the
plugins alone and ``import torch`` alone, and the ``python -X importtime`` total of ``import
fusekit`` and ``from fusekit import FusionClassifier``. Each is a fresh process; medians of
``--runs`` runs. Writes ``benchmarks/results/cli_startup.md`` whole.

    python benchmarks/speed/cli_startup.py [--runs 3] [--before DIR[=LABEL] ...]

``--before DIR`` (repeatable): another checkout of fusekit (``git archive COMMIT | tar -x -C
DIR``, or a worktree) measured in the same runs, alternating with this one, as a column of its
own. ``fusekit`` is the console script beside this interpreter (``python -m fusekit`` where there
is none), run with the checkout and its first-party plugins (``plugins/fusekit-*``) first on
``PYTHONPATH``. The figures come from ``/usr/bin/time -v`` (GNU time, a small parent: its
elapsed wall clock, user + system time and maximum resident set size); without it, from
``time.perf_counter`` and ``os.wait4`` (Linux carries the peak RSS across exec, so this script
imports nothing heavy before its last measurement).
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
CONSOLE_SCRIPT = Path(sys.executable).with_name("fusekit")

LOAD_PLUGINS = "from fusekit.engine.registry import get_registry; get_registry().entries()"


@dataclass(frozen=True)
class Command:
    """One measured command: its arguments after ``python`` (or after the ``fusekit`` console
    script, ``cli=True``) and what is read from a run."""

    label: str
    args: tuple[str, ...]
    importtime: bool = False  # read the -X importtime total instead of the process's memory
    cli: bool = False  # the fusekit console script

    def argv(self) -> list[str]:
        if not self.cli:
            return [sys.executable, *self.args]
        if CONSOLE_SCRIPT.is_file():
            return [str(CONSOLE_SCRIPT), *self.args]
        return [sys.executable, "-m", "fusekit", *self.args]


COMMANDS = (
    Command("`fusekit --help`", ("--help",), cli=True),
    Command("`fusekit bench --help`", ("bench", "--help"), cli=True),
    Command("`fusekit plugins`", ("plugins",), cli=True),
    Command("`fusekit datasets --no-load`", ("datasets", "--no-load"), cli=True),
    Command(f'`python -c "{LOAD_PLUGINS}"` (the plugins alone)', ("-c", LOAD_PLUGINS)),
    Command('`python -c "import fusekit"`', ("-c", "import fusekit")),
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


def gnu_time_figures(report: str) -> tuple[float, float, float]:
    """``(wall s, CPU s, max RSS MiB)`` from the report of ``/usr/bin/time -v``."""
    fields = dict(
        line.strip().rsplit(": ", 1) for line in report.splitlines() if ": " in line.strip()
    )
    clock = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
    wall = sum(float(part) * 60**power for power, part in enumerate(reversed(clock)))
    cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    return wall, cpu, int(fields["Maximum resident set size (kbytes)"]) / 1024


def measure(root: Path, command: Command) -> Run:
    """One run of ``command`` with ``root``'s fusekit and first-party plugins first on the
    path, from ``root``."""
    paths = [root, *sorted((root / "plugins").glob("fusekit-*"))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(path) for path in paths)}
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("w+", suffix=".time") as usage_file,
    ):
        python = command.argv()
        if GNU_TIME:  # wall clock, CPU seconds and peak RSS, written to its own file
            python = [GNU_TIME, "-v", "-o", usage_file.name, *python]
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
            wall, cpu, rss_mib = gnu_time_figures(usage_file.read())
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
    parser.add_argument(
        "--before",
        action="append",
        default=[],
        metavar="DIR[=LABEL]",
        help="another fusekit checkout to compare with (repeatable; LABEL: its column's name, "
        "default its git description)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    checkouts = {}
    for before in args.before:
        folder, _, name = before.partition("=")
        root = Path(folder).resolve()
        if not (root / "fusekit" / "__init__.py").is_file():
            parser.error(f"--before {before!r}: {root} is not a fusekit checkout (no fusekit/).")
        checkouts[f"before ({name or git_label(root)})"] = root
    checkouts[f"this checkout ({git_label(HERE)})"] = HERE
    runs: dict[tuple[str, str], list[Run]] = {}
    for _ in range(args.runs):  # the checkouts alternate, so a slow spell hits both alike
        for command in COMMANDS:
            for name, root in checkouts.items():
                runs.setdefault((command.label, name), []).append(measure(root, command))
    results = {key: medians(value) for key, value in runs.items()}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import provenance  # torch: only after the last measurement

    tool = "GNU time (`/usr/bin/time -v`)" if GNU_TIME else "`os.wait4`"
    text = "\n".join(
        [
            "# Command-line start-up and the cost of `import fusekit`",
            "",
            "```",
            *provenance.header_lines(),
            "```",
            "",
            f"Medians of {args.runs} runs; each command is a fresh process started from the "
            "checkout's root with it and its first-party plugins (`plugins/fusekit-*`) first on "
            "`PYTHONPATH` (`fusekit` is the console script "
            "of the environment). Wall time includes interpreter start-up; wall, CPU (user + "
            f"system time) and max RSS (the peak resident memory) are from {tool}; import time "
            "is the `-X importtime` total of the imports from fusekit's first on. Wall times on "
            "a shared machine vary from run to run; CPU time varies less.",
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
