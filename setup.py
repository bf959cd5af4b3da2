"""Build hook: ship the project's data files inside the wheel.

``datasets.yaml``, ``methods/*.yaml`` and ``reports/paper/*.yaml`` are the project's data and
stay at the top of the repository, where users read and edit them. An editable install reads
them from the checkout; a normal ``pip install .`` copies them into ``rsr_bench/_project/`` so
the installed package finds them from any folder (``rsr_bench.files.project_root``).
Everything else is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROJECT_DATA = ("datasets.yaml", "methods/*.yaml", "reports/paper/*.yaml")


class BuildWithProjectData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself
        here = Path(__file__).resolve().parent
        dest = Path(self.build_lib, "rsr_bench", "_project")
        for pattern in PROJECT_DATA:
            files = sorted(here.glob(pattern))
            if not files:
                raise FileNotFoundError(f"project data {pattern} is missing from {here}")
            for src in files:
                target = dest / src.relative_to(here)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target)


setup(cmdclass={"build_py": BuildWithProjectData})
