"""Which bytespike the benchmark runs: the venv's installed one, or one source tree's.

Without `--baseline` every command is the venv's `bytespike` script (the working tree,
through the editable install). With it, both sides run through `launch.py` with the same
interpreter and `PYTHONPATH=<tree>/src`: the baseline from a temporary git worktree of the
ref (`git worktree add --detach`, removed at the end), the current side from the working
tree, or from a second worktree with `--current REF`.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from launch import MARK
from servers import BenchError

HERE = Path(__file__).parent
BYTESPIKE = str(Path(sys.executable).with_name("bytespike"))
LAUNCH = str(HERE / "launch.py")


@dataclass(frozen=True, slots=True)
class Code:
    """The bytespike one side's commands run, and how to say which it is."""

    side: str  # "current" or "baseline"
    described: str  # for the report: the ref and its commit, or the working tree
    src: Path | None = None  # a tree's src/; None: the venv's `bytespike` script

    def argv(self, *args: str) -> list[str]:
        if self.src is None:
            return [BYTESPIKE, *args]
        return [sys.executable, "-P", LAUNCH, str(self.src), *args]

    @property
    def shipped_catalog(self) -> Path:
        """This side's `src/bytespike/catalog.toml` (the installed package's without a tree)."""
        if self.src is not None:
            return self.src / "bytespike" / "catalog.toml"
        spec = importlib.util.find_spec("bytespike")
        if spec is None or spec.origin is None:
            raise BenchError("bytespike is not installed in this interpreter's environment")
        return Path(spec.origin).with_name("catalog.toml")

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return env if self.src is None else {**env, "PYTHONPATH": str(self.src)}

    def confirm(self, what: str, output: str) -> None:
        """`output` (a command's standard error, or serve.log) shows launch.py's check passed."""
        if self.src is not None and f"{MARK}{self.src / 'bytespike'}" not in output:
            raise BenchError(
                f"{what} ({self.side}) did not show it runs {self.src / 'bytespike'}:\n"
                f"{output[-2000:]}"
            )


INSTALLED = Code("current", "the installed bytespike (the working tree's editable install)")


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise BenchError("--baseline needs git on PATH")
    # A fixed program; the arguments are the benchmark's own and the user's ref.
    done = subprocess.run(  # noqa: S603
        [git, "-C", str(HERE), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"`git {' '.join(args)}` failed:\n{done.stderr}{done.stdout}")
    return done.stdout.strip()


def _commit(ref: str) -> str:
    try:
        return _git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except BenchError:
        raise BenchError(f"{ref!r} names no commit in this repository") from None


def _subject(commit: str) -> str:
    return _git("log", "-1", "--format=%h %s", commit)


@contextmanager
def checked_out(side: str, ref: str) -> Iterator[Code]:
    """REF in a temporary detached worktree while the block runs; its code."""
    commit = _commit(ref)
    parent = Path(tempfile.mkdtemp(prefix=f"bytespike-bench-{side}-"))
    tree = parent / "tree"
    try:
        _git("worktree", "add", "--detach", str(tree), commit)
    except BenchError:
        shutil.rmtree(parent, ignore_errors=True)
        raise
    try:
        if not (tree / "src" / "bytespike" / "__main__.py").is_file():
            raise BenchError(f"{ref} has no src/bytespike/__main__.py to run")
        yield Code(side, f"`{ref}`, commit {_subject(commit)}", tree / "src")
    finally:
        try:
            _git("worktree", "remove", "--force", str(tree))
        except BenchError:
            shutil.rmtree(tree, ignore_errors=True)
            _git("worktree", "prune")
        shutil.rmtree(parent, ignore_errors=True)


def compared(stack: ExitStack, baseline: str, current: str | None) -> tuple[Code, Code]:
    """The baseline's code and the current code (`current`'s, or the working tree as it is),
    their worktrees held open by `stack`."""
    base = stack.enter_context(checked_out("baseline", baseline))
    cur = stack.enter_context(checked_out("current", current)) if current else working_tree()
    return base, cur


def working_tree() -> Code:
    """The working tree's src/, as it is now (uncommitted changes included)."""
    top = Path(_git("rev-parse", "--show-toplevel"))
    head = _subject("HEAD")
    changed = _git("status", "--porcelain", "--", str(top / "src"))
    state = ", with uncommitted changes in src/" if changed else ""
    return Code("current", f"the working tree, HEAD {head}{state}", top / "src")
