"""The pure core imports without the edge libraries; ruff and mypy pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('prefect', 'sqlalchemy', 'openpyxl', 'alembic'):
            raise ImportError(f'the pure core must not import {name}')
        return None
sys.meta_path.insert(0, Block())
import importlib, pkgutil, reconcile, schemas
names = sorted(m.name for package in (reconcile, schemas)
               for m in pkgutil.walk_packages(package.__path__, package.__name__ + '.'))
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_reconcile_and_schemas_import_without_prefect_sqlalchemy_or_openpyxl() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCKER], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    modules = [p for p in (ROOT / "reconcile").glob("*.py") if p.name != "__init__.py"]
    modules += [p for p in (ROOT / "schemas").glob("*.py") if p.name != "__init__.py"]
    assert int(done.stdout.strip()) >= len(modules), "every module of the core was imported"


def test_ruff_passes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "flows", "reconcile", "schemas", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_passes() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
