"""A throwaway virtual environment for packaging tests: it sees every package of this one, adds its own."""

from __future__ import annotations

import os
import site
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

from workbench.testkit.report import PluginCheckError


@dataclass
class ScratchEnv:
    """A virtual environment that sees every package of the one that made it, and adds its own on top.

    Install a plugin there with ``install`` and run ``ganbench`` there with
    ``ganbench``; the environment you work in stays as it was.
    """

    path: Path

    @property
    def python(self) -> Path:
        return self.path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    def install(self, project: Path | str, editable: bool = True) -> None:
        """``pip install --no-deps --no-build-isolation [-e] PROJECT`` into this environment, offline."""
        command = [str(self.python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                   "--no-index", *(["-e"] if editable else []), str(project)]
        done = subprocess.run(command, capture_output=True, text=True, env=self.environ())
        if done.returncode != 0:
            raise PluginCheckError(f"pip could not install {project}:\n{done.stdout}{done.stderr}")

    def ganbench(self, *args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
                 timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``ganbench ARGS`` with this environment's Python; returns the finished process, output captured."""
        return self.run("-m", "workbench", *args, cwd=cwd, env=env, timeout=timeout)

    def run(self, *args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """Run this environment's Python with ``args`` (``run("-m", "pytest", "tests")``)."""
        return subprocess.run([str(self.python), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=self.environ(env))

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment variables for processes of this environment."""
        return {**os.environ, "PYTHONUNBUFFERED": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(extra or {})}


def scratch_env(path: Path | str) -> ScratchEnv:
    """Create a ``ScratchEnv`` at ``path`` (a new folder) in well under a second: no pip of its own, no copies."""
    path = Path(path)
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    env = ScratchEnv(path)
    purelib = subprocess.run([str(env.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    if site.ENABLE_USER_SITE and Path(site.getusersitepackages()).is_dir():
        outer.append(site.getusersitepackages())
    # An "import" line in a .pth file runs at start-up: addsitedir also reads the outer .pth files (editable installs).
    lines = [f"import site; site.addsitedir({folder!r})\n" for folder in outer]
    (Path(purelib) / "_ganbench_outer_site.pth").write_text("".join(lines), encoding="utf-8")
    return env
