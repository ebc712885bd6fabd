"""Run the `bytespike` CLI from one source tree, and refuse to run any other copy.

    python -P bench/launch.py SRC [bytespike arguments ...]

With `--baseline`, the benchmark runs each side's provisioning commands and its
`bytespike serve` through this, with the venv's interpreter and `PYTHONPATH=SRC` (a git
worktree's `src/`, or the working tree's). The venv's editable install also puts the working
tree's `src/` on `sys.path` (a `.pth` entry, after PYTHONPATH), so before handing over to
what `python -m bytespike` runs, this checks that the package `bytespike` was imported
from SRC and from nowhere else, exits with status 3 if not, and otherwise names the
directory on standard error (`serve.log` starts with it). `-P` keeps `bench/` itself off
`sys.path`, so none of the benchmark's modules can shadow the gateway's.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

MARK = "launch: bytespike from "
WRONG_CODE = 3


def imported_from(src: Path) -> str | None:
    """None if `bytespike` is SRC's package (and only SRC's); otherwise what it is instead."""
    import bytespike

    expected = (src / "bytespike").resolve()
    found = [Path(p).resolve() for p in getattr(bytespike, "__path__", [])]
    init = Path(bytespike.__file__).resolve() if bytespike.__file__ else None
    if found != [expected] or init != expected / "__init__.py":
        return f"__file__ {init}, __path__ {[str(p) for p in found]}"
    return None


def main() -> None:
    src = Path(sys.argv.pop(1)).resolve()
    if wrong := imported_from(src):
        print(f"launch: bytespike is not {src}'s: {wrong}", file=sys.stderr, flush=True)
        sys.exit(WRONG_CODE)
    print(f"{MARK}{src / 'bytespike'}", file=sys.stderr, flush=True)
    sys.argv[0] = "bytespike"
    runpy.run_module("bytespike", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
