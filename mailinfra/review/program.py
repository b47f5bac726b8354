"""Run the Pulumi program for one stack file under the mock runtime, in a subprocess (an edge module).

The mock runtime's state is process-global (one program run per process), so each side of a review
runs in its own `python -m mailinfra.review.program STACK STACKS_DIR`; base and head run at the same
time while the review plans and renders. Both run the CURRENT program (this checkout's __main__.py),
as the base's stack file is read by the current code (mailinfra.review.base).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mailinfra.errors import MailinfraError, PlanError
from mailinfra.model.load import stack_name_of

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 600  # prod with >1,000 resources takes a few seconds; this only stops a hung run


class ProgramRun:
    """A started mock run of one stack file; `resources()` waits for it."""

    def __init__(self, stack_file: Path, where: str) -> None:
        self.where = where
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mailinfra.review.program", stack_name_of(stack_file), str(stack_file.parent)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def resources(self) -> list[dict[str, Any]]:
        out, err = self.process.communicate(timeout=TIMEOUT_SECONDS)
        try:
            data = json.loads(out.strip().splitlines()[-1])  # the JSON line, after anything the program printed
        except (json.JSONDecodeError, IndexError):
            last = (err.strip().splitlines() or ["no output"])[-1]
            raise PlanError(f"{self.where}: the Pulumi program failed under the mock runtime: {last}") from None
        if "error" in data:
            raise PlanError(f"{self.where}: the Pulumi program refused the stack: {data['error']}")
        return list(data["resources"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@contextlib.contextmanager
def running_programs() -> Iterator[list[ProgramRun]]:
    """Runs started inside are killed on the way out if not finished (an error elsewhere in the review)."""
    runs: list[ProgramRun] = []
    try:
        yield runs
    finally:
        for run in runs:
            run.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Print {"resources": [...]} (each with its mock `id`) or {"error": "..."} as JSON."""
    parser = argparse.ArgumentParser(prog="python -m mailinfra.review.program")
    parser.add_argument("stack", help="stack name")
    parser.add_argument("stacks_dir", type=Path, help="directory holding Pulumi.<stack>.yaml")
    args = parser.parse_args(argv)
    from pulumi.runtime import settings
    from pulumi.runtime.mocks import MockMonitor

    from mailinfra.deployment.mock_runtime import collect_resources

    try:
        resources = collect_resources(args.stack, args.stacks_dir)
    except MailinfraError as error:
        print(json.dumps({"error": str(error)}))
        return 1
    # The id the mock gave each resource: inputs that hold it are references (mailinfra.review.resources).
    monitor = settings.get_monitor()
    registered = monitor.get_registered_resources() if isinstance(monitor, MockMonitor) else {}
    for resource in resources:
        entry = registered.get(resource["urn"])
        resource["id"] = entry.id if entry is not None else None
    print(json.dumps({"resources": resources}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
