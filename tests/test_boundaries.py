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
import reconcile.matching, reconcile.ingest, reconcile.synthetic, reconcile.snapshot, reconcile.explain, schemas
print('ok')
"""


def test_reconcile_and_schemas_import_without_prefect_sqlalchemy_or_openpyxl() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCKER], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


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
