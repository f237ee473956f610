"""A database that cannot be used is one clear line and exit status 7, never a traceback or a password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import PG_ADMIN_URL

RECON = Path(sys.executable).with_name("recon")


def _recon(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "RECON_HOME": str(tmp_path / "home"), "RECON_DATABASE_URL": url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_HOME": str(tmp_path / "prefect")}  # fmt: skip
    return subprocess.run([str(RECON), *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_status_before_init_says_run_init(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    done = _recon(tmp_path, f"sqlite:///{tmp_path / 'home' / 'recon.db'}", "status", "C1")
    assert done.returncode == 7, done.stderr
    assert "is not initialised (or older than this version): run `recon init`" in done.stderr
    assert "Traceback" not in done.stderr


def test_init_against_a_missing_postgresql_database(tmp_path: Path) -> None:
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgres@", "postgres:s3cret@") + "/recon_no_such_database"
    done = _recon(tmp_path, url, "init")
    assert done.returncode == 7, done.stderr
    assert "recon_no_such_database" in done.stderr and "does not exist" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'recon.db'}"
    for variable, value in (("RECON_MAX_MEMBER_MB", "lots"), ("RECON_LOG_LEVEL", "loud")):
        env = {"PATH": "/usr/bin:/bin", "RECON_HOME": str(tmp_path), "RECON_DATABASE_URL": url, variable: value}
        done = subprocess.run([str(RECON), "status", "C1"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"configuration: {variable}: ") and repr(value) in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_settings_come_from_a_file_and_the_environment_and_every_bad_one_is_named(tmp_path: Path) -> None:
    """One settings model: ``recon.env`` in the working directory (or ``$RECON_SETTINGS_FILE``),
    the environment over it; a name that is not a setting, and each bad value, named at once."""
    url = f"sqlite:///{tmp_path / 'recon.db'}"
    base = {"PATH": "/usr/bin:/bin", "RECON_HOME": str(tmp_path), "RECON_DATABASE_URL": url}

    def recon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(RECON), *args], env={**base, **env}, cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)  # fmt: skip

    (tmp_path / "recon.env").write_text("RECON_FALLBACK_THRESHOLD=150\nRECON_LANGUAGE=fr\nRECON_CUTOFF=25:00\n")
    done = recon({}, "status", "C1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    for named in ("RECON_FALLBACK_THRESHOLD: ", "RECON_LANGUAGE: ", "RECON_CUTOFF: "):
        assert named in done.stderr, done.stderr
    (tmp_path / "recon.env").write_text("RECON_FALBACK_THRESHOLD=70\n")
    done = recon({}, "status", "C1")
    assert done.returncode == 2 and "RECON_FALBACK_THRESHOLD: not a setting" in done.stderr, done.stderr
    # a good file, and the environment over it: the settings the run uses
    other = tmp_path / "elsewhere.env"
    other.write_text("RECON_LANGUAGE=en\nRECON_CUTOFF=08:30\n")
    assert recon({"RECON_SETTINGS_FILE": str(other)}, "init").returncode == 0
    from flows.config import load_config

    config = load_config({"RECON_SETTINGS_FILE": str(other), "RECON_CUTOFF": "10:15"})
    assert (config.settings.language, config.settings.cutoff.isoformat()) == ("en", "10:15:00")
    missing = recon({"RECON_SETTINGS_FILE": str(tmp_path / "nowhere.env")}, "status", "C1")
    assert missing.returncode == 2 and "RECON_SETTINGS_FILE: no such file" in missing.stderr
