"""Device planning: CPU split, GPU names, bad specs."""

from __future__ import annotations

import pytest

from agents.devices import DeviceError, cpu_count, cpu_devices, plan_devices, short_gpu_name


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
