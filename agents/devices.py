"""Devices: one per agent. GPUs are found with ``nvidia-smi`` (torch only if that is
missing, imported lazily); without a GPU the CPU threads are split across the agents.

``--devices`` accepts ``auto`` (default), ``cpu``, ``cpu:N`` (N threads per agent), or a
comma list of GPU indices (``0,1`` or ``cuda:0,cuda:1``). Two agents share a GPU only if
the list names it twice.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)


class DeviceError(ValueError):
    """A device specification cannot be satisfied; the message says which part."""


@dataclass(frozen=True)
class Device:
    """The device of one agent. ``name`` is shown and recorded (``cuda:0``, ``cpu[0-1]``)."""

    kind: Literal["cpu", "cuda"]
    name: str
    hardware: str  # hardware class for comparing metrics: "1xH100", "cpu-2c"
    threads: int
    gpu_index: int | None = None


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def short_gpu_name(name: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``H100``; ``NVIDIA GeForce RTX 4090`` -> ``RTX4090``."""
    words = [w for w in re.split(r"[\s\-_]+", name) if w]
    words = [w for w in words if w.upper() not in ("NVIDIA", "GEFORCE", "TESLA", "QUADRO")]
    if words and words[0].upper() == "RTX" and len(words) > 1:
        return "RTX" + words[1]
    for w in words:
        if re.search(r"\d", w) and not re.fullmatch(r"\d+GB", w, re.IGNORECASE):
            return w
    return words[0] if words else "GPU"


def detect_gpus() -> list[Gpu]:
    """Visible NVIDIA GPUs (respects ``CUDA_VISIBLE_DEVICES`` via torch only)."""
    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            out = subprocess.run(
                [exe, "--query-gpu=index,name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout
            gpus = []
            for line in out.splitlines():
                idx, _, name = line.partition(",")
                if idx.strip().isdigit():
                    gpus.append(Gpu(int(idx), name.strip()))
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if visible is not None and visible.strip() != "":
                keep = {int(v) for v in visible.split(",") if v.strip().isdigit()}
                gpus = [g for g in gpus if g.index in keep]
            elif visible is not None:
                gpus = []
            return gpus
        except (subprocess.SubprocessError, OSError) as exc:
            log.warning("nvidia-smi failed (%s); trying torch", exc)
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return []
    if not (Path("/dev/nvidiactl").exists() or Path("/dev/kfd").exists()):
        return []  # no GPU driver here: do not pay for importing torch
    try:
        import torch  # lazy: only when nvidia-smi cannot answer
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [Gpu(i, torch.cuda.get_device_name(i)) for i in range(torch.cuda.device_count())]


MEMORY_SHARE = 0.8  # of this machine's memory, split across runs as its CPUs are


# The cgroup's memory limit: v2's file, else v1's (where v1 says no limit it holds a huge
# number, which the min() with the physical memory drops).
CGROUP_MEMORY_LIMITS = (
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
)


def memory_total_gb() -> float:
    """This machine's memory in GiB: the physical memory, or the cgroup's limit where it is
    lower (a container; cgroup v2, or v1 where there is no v2 file); 0 where the OS does not
    say."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0.0
    for path in CGROUP_MEMORY_LIMITS:
        try:
            raw = Path(path).read_text(encoding="ascii").strip()
        except OSError:
            continue
        if raw.isdigit():  # v2's "max": no limit
            total = min(total, int(raw))
        break
    return total / 2**30


def memory_share_gb(device: Device) -> float:
    """The default memory limit of one run on ``device``: ``MEMORY_SHARE`` of this
    machine's memory times the device's share of its CPUs (0: unknown, no limit). Two
    agents of one CPU thread each on a 2-core, 24 GiB machine get 9.6 GiB per run."""
    return MEMORY_SHARE * memory_total_gb() * min(1.0, device.threads / cpu_count())


def cpu_devices(n_agents: int, threads: int | None = None) -> list[Device]:
    """Split this machine's CPUs across ``n_agents`` (at least one thread each)."""
    total = cpu_count()
    per = threads or max(1, total // n_agents)
    devices = []
    for i in range(n_agents):
        first = (i * per) % total
        last = first + per - 1
        span = f"{first}" if per == 1 else f"{first}-{last}"
        devices.append(Device("cpu", f"cpu[{span}]", f"cpu-{per}c", per))
    return devices


def plan_devices(n_agents: int | None, spec: str | None = "auto") -> list[Device]:
    """One device per agent. ``n_agents=None`` means one per GPU (2 on CPU, 1 on 1 core)."""
    spec = (spec or "auto").strip().lower()
    if n_agents is not None and n_agents < 1:
        raise DeviceError("--agents must be at least 1")
    if spec == "cpu" or spec.startswith("cpu:"):
        threads = None
        if spec.startswith("cpu:"):
            raw = spec[4:]
            if not raw.isdigit() or int(raw) < 1:
                raise DeviceError(f"--devices {spec!r}: threads must be a positive integer")
            threads = int(raw)
        n = n_agents or min(2, cpu_count())
        return cpu_devices(n, threads)
    if spec == "auto":
        gpus = detect_gpus()
        if not gpus:
            return cpu_devices(n_agents or min(2, cpu_count()))
        n = n_agents or len(gpus)
        if n > len(gpus):
            raise DeviceError(
                f"--agents {n} but only {len(gpus)} GPU(s); agents never share a GPU unless "
                "--devices names it more than once (e.g. --devices 0,0)"
            )
        chosen = gpus[:n]
    else:
        found = {g.index: g for g in detect_gpus()}
        chosen = []
        for part in spec.split(","):
            raw = part.strip().removeprefix("cuda:")
            if not raw.isdigit():
                raise DeviceError(
                    f"--devices: {part.strip()!r} is not a GPU index, 'cpu' or 'auto'"
                )
            if int(raw) not in found:
                raise DeviceError(f"--devices: no GPU with index {raw} (found {sorted(found)})")
            chosen.append(found[int(raw)])
        if n_agents is not None and n_agents != len(chosen):
            raise DeviceError(f"--agents {n_agents} but --devices names {len(chosen)} GPU(s)")
    threads = max(1, cpu_count() // len(chosen))
    return [
        Device("cuda", f"cuda:{g.index}", f"1x{short_gpu_name(g.name)}", threads, g.index)
        for g in chosen
    ]
