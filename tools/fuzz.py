"""Run the property tests at length (`nox -s fuzz -- [--examples N] [--seed S]`).

CI runs tests/test_invariants.py, tests/test_invariants_equivalence.py and
tests/test_parsers_on_any_text.py with a few derandomized examples each. This runs the same properties with as many examples as
asked, drawn from a seed (printed, so that a failure can be replayed with --seed),
and prints a table: property, examples run, failures, seconds.

A counterexample is printed by Hypothesis as the falsifying example; it belongs in
tests/test_fuzz_regressions.py (tests/test_equivalence_regressions.py for the
same-bytes properties) as a plain test, beside its fix.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPO_PROPERTIES = ("tests/test_invariants.py", "tests/test_invariants_equivalence.py")
PARSER_PROPERTIES = "tests/test_parsers_on_any_text.py"


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return int(text)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fuzz", description="Run pinsync's property tests with many random examples."
    )
    parser.add_argument(
        "--examples",
        type=_positive,
        default=100,
        metavar="N",
        help="generated repositories per repository property (default: 100)",
    )
    parser.add_argument(
        "--parser-examples",
        type=_positive,
        default=None,
        metavar="M",
        help="texts per reader (default: 50 x N)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, metavar="S", help="replay the run of this seed"
    )
    parser.add_argument(
        "--only",
        choices=("all", "repos", "parsers"),
        default="all",
        help="run only the repository properties or only the parsers (default: all)",
    )
    parser.add_argument(
        "--max-minutes",
        type=_positive,
        default=None,
        metavar="M",
        help="stop after M minutes (as Ctrl-C would) and report what ran by then",
    )
    parser.add_argument(
        "-k", dest="keyword", default=None, metavar="EXPR", help="pytest -k: a subset of tests"
    )
    return parser.parse_args(argv)


def property_name(nodeid: str) -> str:
    """`tests/test_x.py::test_y[param]` -> `test_y[param]`."""
    return nodeid.split("::", 1)[-1]


def render_table(rows: dict[str, dict[str, object]]) -> str:
    # Plain tests beside the properties (no example counted) are not rows of the table.
    rows = {k: r for k, r in rows.items() if r["examples"] or r["outcome"] == "failed"}
    header = ("property", "examples", "failures", "seconds")
    lines = [
        (
            property_name(nodeid)
            + (" (stopped by --max-minutes)" if row["outcome"] == "stopped" else ""),
            str(row["examples"]),
            "0" if row["outcome"] in ("passed", "xfailed", "skipped", "stopped") else "1",
            f"{float(str(row['seconds'])):.1f}",
        )
        for nodeid, row in rows.items()
    ]
    total_examples = sum(int(str(r["examples"])) for r in rows.values())
    total_failures = sum(int(line[2]) for line in lines)
    total_seconds = sum(float(str(r["seconds"])) for r in rows.values())
    lines.append(("total", str(total_examples), str(total_failures), f"{total_seconds:.1f}"))
    widths = [max(len(x[i]) for x in [header, *lines]) for i in range(4)]

    def fmt(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return f"{first}  {rest}".rstrip()

    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *(fmt(x) for x in lines[:-1]), rule, fmt(lines[-1])])


def run_for(command: Sequence[str], env: dict[str, str], minutes: int | None) -> int:
    """Run pytest; after `minutes`, interrupt it as Ctrl-C would (it then reports what
    ran), and kill it if it does not stop within a minute."""
    proc = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        return proc.wait(timeout=minutes * 60 if minutes else None)
    except subprocess.TimeoutExpired:
        print(f"\nfuzz: {minutes} minutes are up; stopping", flush=True)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 0 if proc.returncode in (0, 2) else proc.returncode
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        raise


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    parser_examples = args.parser_examples or 50 * args.examples
    files = {
        "all": [*REPO_PROPERTIES, PARSER_PROPERTIES],
        "repos": [*REPO_PROPERTIES],
        "parsers": [PARSER_PROPERTIES],
    }[args.only]
    with tempfile.TemporaryDirectory(prefix="pinsync-fuzz-") as tmp:
        report = Path(tmp, "report.json")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "tools"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
            ).rstrip(os.pathsep),
            "PINSYNC_FUZZ_EXAMPLES": str(args.examples),
            "PINSYNC_FUZZ_PARSER_EXAMPLES": str(parser_examples),
            "PINSYNC_FUZZ_REPORT": str(report),
        }
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "fuzz_profile",
            f"--hypothesis-seed={seed}",
            *(["-k", args.keyword] if args.keyword else []),
            *files,
        ]
        print(
            f"fuzz: seed {seed}; {args.examples} repositories per property, "
            f"{parser_examples} texts per reader (replay: --seed {seed})",
            flush=True,
        )
        code = run_for(command, env, args.max_minutes)
        if not report.is_file():
            print("fuzz: pytest wrote no report", file=sys.stderr)
            return code or 2
        rows = json.loads(report.read_text())
    print()
    print(render_table(rows))
    replay = f"--seed {seed} --examples {args.examples} --parser-examples {parser_examples}"
    print(f"\nseed {seed}: replay with `nox -s fuzz -- {replay}`")
    return code


if __name__ == "__main__":
    sys.exit(main())
