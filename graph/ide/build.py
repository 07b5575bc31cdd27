"""``python -m graph build-ide``: install GraphiQL's npm packages from the lockfile and copy their builds.

The same two npm commands run in the Dockerfile's node stage, so a wheel built there carries the assets.
Needs Node.js and npm, and the npm registry once; the service itself never downloads anything.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from graph.ide.page import IDE_DIR, assets_built

# --ignore-scripts: none of these packages needs an install script, so none gets to run one.
NPM_STEPS = (("ci", "--ignore-scripts", "--no-audit", "--no-fund"), ("run", "build"))


def build(ide_dir: Path = IDE_DIR, *, npm: str | None = None) -> int:
    """Run the npm steps in ``ide_dir``; 0 when ``ide_dir/static`` holds every asset, else an exit status."""
    npm = npm or shutil.which("npm")
    if npm is None:
        print("alipay-graph: build-ide needs Node.js and npm on PATH", file=sys.stderr)  # noqa: T201
        return 2
    for step in NPM_STEPS:
        # npm's output goes to file descriptor 2 (stderr): stdout carries only the result line below.
        done = subprocess.run([npm, *step], cwd=ide_dir, stdout=2, check=False)  # noqa: S603
        if done.returncode != 0:
            print(f"alipay-graph: npm {step[0]} failed (exit {done.returncode})", file=sys.stderr)  # noqa: T201
            return 1
    if not assets_built(ide_dir / "static"):
        print(f"alipay-graph: npm run build left {ide_dir / 'static'} incomplete", file=sys.stderr)  # noqa: T201
        return 1
    print(f"GraphiQL assets built in {ide_dir / 'static'}")  # noqa: T201
    return 0
