"""Device planning (CPU split, GPU names, bad specs) and the keep rule."""

from __future__ import annotations

import pytest

from agents.devices import DeviceError, cpu_count, cpu_devices, plan_devices, short_gpu_name
from agents.judge import judge, noise_from
from agents.runner import RunResult
from memory.models import Status


def test_cpu_threads_are_split_across_agents():
    devs = cpu_devices(2)
    per = max(1, cpu_count() // 2)
    assert [d.threads for d in devs] == [per, per]
    assert all(d.kind == "cpu" and d.hardware == f"cpu-{per}c" for d in devs)
    assert devs[0].name != devs[1].name
    assert plan_devices(3, "cpu:2")[0].threads == 2


def test_auto_on_a_machine_without_gpus_splits_the_cpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # hide GPUs if the machine has any
    devs = plan_devices(None, "auto")
    assert len(devs) == min(2, cpu_count()) and all(d.kind == "cpu" for d in devs)


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA A100-SXM4-40GB", "A100"),
        ("NVIDIA GeForce RTX 4090", "RTX4090"),
        ("Tesla T4", "T4"),
    ],
)
def test_gpu_hardware_class_names(name, short):
    assert short_gpu_name(name) == short


def test_bad_device_specs_say_what_is_wrong():
    with pytest.raises(DeviceError, match="not a GPU index"):
        plan_devices(None, "tpu")
    with pytest.raises(DeviceError, match="threads must be a positive integer"):
        plan_devices(None, "cpu:zero")
    with pytest.raises(DeviceError, match="at least 1"):
        plan_devices(0, "cpu")


def _ok(metric: float) -> RunResult:
    return RunResult(status="ok", returncode=0, metric=metric)


def test_keep_only_beyond_the_noise_in_the_tasks_direction():
    assert noise_from([1.00, 1.03]) == pytest.approx(0.03)
    assert noise_from([1.0], min_noise=0.01) == 0.01
    assert judge(_ok(0.95), 1.0, 0.03, "minimize").status == Status.keep
    inside = judge(_ok(0.98), 1.0, 0.03, "minimize")
    assert inside.status == Status.discard and "inside the noise" in inside.reason
    assert judge(_ok(1.05), 1.0, 0.03, "minimize").status == Status.discard
    assert judge(_ok(1.05), 1.0, 0.03, "maximize").status == Status.keep


def test_failures_and_tampering_are_never_keeps():
    assert judge(_ok(0.1), 1.0, 0.0, "minimize", tampered=["prepare.py"]).status == Status.invalid
    crash = RunResult(status="crash", returncode=1, metric=None, error="exit code 1")
    assert judge(crash, 1.0, 0.0, "minimize").status == Status.crash
    tout = RunResult(status="timeout", returncode=-9, metric=None, error="killed")
    assert judge(tout, 1.0, 0.0, "minimize").status == Status.timeout


def test_a_baseline_replicate_is_judged_ran_or_not():
    from agents.judge import judge_replicate

    assert judge_replicate(_ok(1.3)).status == Status.keep
    crashed = RunResult(status="crash", returncode=1, metric=None, error="exit code 1")
    assert judge_replicate(crashed).status == Status.crash
    assert judge_replicate(_ok(1.3), ["prepare.py"]).status == Status.invalid
    cut = RunResult(status="interrupted", returncode=None, metric=None, error="stopped")
    assert judge_replicate(cut).status == Status.interrupted
