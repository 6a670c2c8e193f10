"""Running the README's and the docs' code blocks as their readers would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT_MARK = 'if __name__ == "__main__":'


def run_block(code: str, where: str, folder: Path) -> None:
    """Run one block: a script (it has a ``__main__`` guard, as code whose functions go to
    other processes must) in a process of its own, in ``folder``; any other block here."""
    if SCRIPT_MARK in code:
        script = folder / "example.py"
        script.write_text(code)
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=folder,
        )
        assert done.returncode == 0, f"{where}\n{done.stderr}"
        return
    exec(compile(code, where, "exec"), {"__name__": "docs_example"})
