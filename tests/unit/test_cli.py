"""The ``gigvora`` console script: token, config lint, db migrate/check/backup/restore, seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from realtime.identity import TokenService

SECRET = "c" * 40


def gigvora(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GIGVORA_")}
    environ.update({"GIGVORA_DATA_DIR": str(data_dir), "GIGVORA_JWT_SECRET": SECRET, **env})
    return subprocess.run([sys.executable, "-m", "realtime.cli", *args], env=environ,
                          capture_output=True, text=True, timeout=60)


def test_token_mints_a_verifiable_token(tmp_path: Path) -> None:
    done = gigvora("token", "--sub", "u7", "--name", "Ada", "--roles", "member,moderator",
                   "--ttl", "60", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    who = TokenService(SECRET).verify(done.stdout.strip())
    assert who.sub == "u7" and who.roles == {"member", "moderator"}
    bad = gigvora("token", "--sub", "u7", "--roles", "emperor", data_dir=tmp_path)
    assert bad.returncode == 2 and "unknown roles" in bad.stderr


def test_config_lint(tmp_path: Path) -> None:
    assert gigvora("config", "lint", data_dir=tmp_path).returncode == 0
    bad = gigvora("config", "lint", data_dir=tmp_path, GIGVORA_PORT="x", GIGVORA_NOPE="1")
    assert bad.returncode == 1
    assert "GIGVORA_PORT" in bad.stdout and "GIGVORA_NOPE: unknown setting" in bad.stdout
    assert SECRET not in bad.stdout + bad.stderr
    boot = gigvora("serve", data_dir=tmp_path, GIGVORA_PORT="x")
    assert boot.returncode == 2 and boot.stderr.strip().startswith("GIGVORA_PORT:")


def test_db_commands_and_seed(tmp_path: Path) -> None:
    assert gigvora("db", "migrate", data_dir=tmp_path).returncode == 0
    check = gigvora("db", "check", data_dir=tmp_path)
    assert check.returncode == 0 and "schema ok" in check.stdout
    seed = gigvora("seed", data_dir=tmp_path)
    assert seed.returncode == 0 and "general" in seed.stdout
    backup = tmp_path / "backup.db"
    done = gigvora("db", "backup", str(backup), data_dir=tmp_path)
    assert done.returncode == 0 and backup.exists(), done.stderr
    refused = gigvora("db", "restore", str(backup), data_dir=tmp_path)
    assert refused.returncode != 0 and "--force" in refused.stderr
    restored = gigvora("db", "restore", str(backup), "--force", data_dir=tmp_path)
    assert restored.returncode == 0, restored.stderr
