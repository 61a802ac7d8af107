"""Noise measurement: replicate runs of the unmodified program on the swarm's devices.

Each replicate is recorded with ``role=baseline`` (status ``keep`` when it ran); the first
replicate is the root of every agent's lineage. Replicates already in memory for the same
program, hardware class and budget are reused. The rule is in :mod:`agents.judge`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agents.devices import Device
from agents.judge import noise_from
from agents.library import same_budget
from agents.runner import run_program
from memory.models import ExperimentCreate, ExperimentPublic, Role, Status, TraceQuery, new_id

if TYPE_CHECKING:
    from agents.swarm import Swarm

log = logging.getLogger(__name__)


def existing_baselines(swarm: Swarm) -> list[ExperimentPublic]:
    """Baseline replicates of the root program on this hardware and budget in memory."""
    page = swarm.store.query_traces(
        TraceQuery(
            task=swarm.task.name,
            fingerprint=swarm.root.fingerprint,
            hardware=swarm.hardware,
            role=[Role.baseline],
            status=[Status.keep],
            sort="created_at",
            limit=100,
        )
    )
    return [t for t in page.data if t.metric is not None and same_budget(t, swarm.budget)]


def baseline_run(swarm: Swarm, index: int, name: str, device: Device, out: list) -> None:
    """One replicate of the unmodified program on ``device``, recorded as a baseline."""
    ws = swarm.workspace(name)
    ws.restore_protected()
    ws.materialise(swarm.root)
    trace_id = new_id()
    started = datetime.now(UTC)
    result = run_program(
        swarm.task,
        ws.path,
        device,
        swarm.budget,
        swarm.directory / "agents" / name / "logs" / f"baseline-{trace_id}.log",
        stop=swarm.stop_event,
        on_start=ws.write_pidfile,
        python=swarm.config.python,
    )
    ws.clear_pidfile()
    tampered = ws.tampered()
    if tampered:
        ws.restore_protected()
    ok = result.status == "ok" and not tampered
    summary = result.summary
    peak = summary.get("peak_memory_mb")
    error = result.error or (f"changed protected files {tampered}" if tampered else "")
    status = (
        Status.keep
        if ok
        else (
            Status.interrupted
            if result.status == "interrupted"
            else Status.timeout
            if result.status == "timeout"
            else Status.crash
        )
    )
    trace = swarm.store.add_trace(
        ExperimentCreate(
            id=trace_id,
            task=swarm.task.name,
            swarm_id=swarm.swarm_id,
            agent_id=f"{swarm.swarm_id}/{name}",
            role=Role.baseline,
            hypothesis=f"baseline replicate {index + 1}: the unmodified program",
            fingerprint=swarm.root.fingerprint,
            status=status,
            metric_name=swarm.task.metric_name,
            metric=result.metric if ok else None,
            direction=swarm.task.direction,
            memory_gb=round(peak / 1024, 4) if isinstance(peak, float) else None,
            resources={**summary, "budget_s": swarm.budget, "log_path": result.log_path},
            log_tail=result.log_tail,
            error="" if ok else error,
            device=device.name,
            hardware=device.hardware,
            started_at=started,
            finished_at=datetime.now(UTC),
            duration_s=result.duration_s,
        )
    )
    out.append(trace)


def measure_noise(swarm: Swarm) -> float:
    """Run the missing replicates in parallel, one per agent device; return the noise."""
    from agents.swarm import SwarmError

    existing = existing_baselines(swarm)
    need = max(0, swarm.config.replicates - len(existing))
    if need:
        log.info("measuring noise: %d baseline run(s) of %g s", need, swarm.budget)
        with swarm.board_lock:
            for b in swarm.board.values():
                b.status = "baseline"
                b.hypothesis = "baseline: the unmodified program"
                b.run_started = time.time()
    done = 0
    while done < need:
        batch = []
        out: list[Any] = []
        for name, device in zip(swarm.names, swarm.devices, strict=True):
            if done + len(batch) >= need:
                break
            t = threading.Thread(
                target=baseline_run,
                args=(swarm, len(existing) + done + len(batch), name, device, out),
                name=f"baseline-{name}",
            )
            batch.append(t)
            t.start()
        for t in batch:
            t.join()
        done += len(batch)
        failed = [t for t in out if t.status != Status.keep]
        if failed:
            f = failed[0]
            raise SwarmError(
                f"the unmodified program does not run ({f.status.value}): {f.error}; "
                f"log: {f.resources.get('log_path', '')}"
            )
        if swarm.stop_event.is_set():
            raise SwarmError("stopped while measuring the noise")
        existing += out
    metrics = [t.metric for t in existing[: max(swarm.config.replicates, 1)]]
    swarm.noise = noise_from([m for m in metrics if m is not None])
    swarm.baseline_id = existing[0].id
    with swarm.board_lock:
        for b in swarm.board.values():
            b.status = "idle"
            b.run_started = None
            b.base_metric = sum(metrics) / len(metrics) if metrics else None
    log.info("noise %.6g from %d baseline run(s) on %s", swarm.noise, len(metrics), swarm.hardware)
    return swarm.noise
