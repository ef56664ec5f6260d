"""A worker names its device in its heartbeat, read with nvidia-smi (never by initialising CUDA
in the process that forks the pool)."""

import os
import stat

import pytest

from apps.core import heartbeat


@pytest.fixture
def path_with(tmp_path, monkeypatch):
    """PATH holding only a folder of our own, with an `nvidia-smi` script printing `output`."""

    def make(output: str | None, *, exit_code: int = 0) -> None:
        if output is not None:
            script = tmp_path / "nvidia-smi"
            script.write_text(f"#!/bin/sh\nprintf '%s' '{output}'\nexit {exit_code}\n")
            script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", str(tmp_path))
        heartbeat.worker_device.cache_clear()

    yield make
    heartbeat.worker_device.cache_clear()


def test_gpus_are_named_and_counted(path_with):
    path_with("NVIDIA H100 80GB HBM3\nNVIDIA H100 80GB HBM3\nNVIDIA L4\n")
    assert heartbeat.worker_device() == "2 x NVIDIA H100 80GB HBM3, NVIDIA L4"


def test_one_gpu_is_its_name(path_with):
    path_with("NVIDIA H200\n")
    assert heartbeat.worker_device() == "NVIDIA H200"


@pytest.mark.parametrize(("output", "exit_code"), [(None, 0), ("", 0), ("No devices", 9)])
def test_no_nvidia_smi_no_gpu_or_a_failing_one_is_the_cpu(path_with, output, exit_code):
    path_with(output, exit_code=exit_code)
    assert heartbeat.worker_device() == "cpu"


def test_the_heartbeat_carries_the_device(path_with, monkeypatch):
    path_with("NVIDIA H200\n")
    monkeypatch.setattr(heartbeat, "HEARTBEATS_KEY", "aula:test:device:heartbeats")
    heartbeat.redis_client().delete(heartbeat.HEARTBEATS_KEY)
    try:
        heartbeat.heartbeat_record(hostname="celery@gpu-1", queues=["gpu"])
        beat = heartbeat.heartbeats_read()["celery@gpu-1"]
    finally:
        heartbeat.redis_client().delete(heartbeat.HEARTBEATS_KEY)
    assert (beat["device"], beat["queues"], beat["pid"]) == ("NVIDIA H200", ["gpu"], os.getpid())
