"""The cluster swarm's driver: agents as Ray actors across the nodes, one memory.

1. Join (or start) the cluster; count its GPUs (or CPU shares): one agent each unless
   ``--agents`` says otherwise.
2. One memory for all: a team store or a labswarm server is opened by every agent
   directly (:class:`~agents.cluster.actor.MemoryAccess`); the embedded default is served
   by this process over HTTP with a generated token (the ``serve`` callable, given by the
   CLI: ``agents`` imports ``server`` only there).
3. Put the task directory into the object store once and start one actor per agent
   (``num_gpus=1`` or ``num_cpus=share``, spread over the nodes, restarted by Ray up to
   ``max_restarts`` times); each reports its node and the device it found there.
4. Setup on every agent, then the noise: :func:`agents.baseline.measure_noise`, the same
   code as the embedded swarm, its replicates executed by the agents' actors and
   recorded here.
5. Every agent runs its graph on its node; this process polls their live-view events,
   notices agents Ray cannot place again, and ends when all have ended.
6. ``stop()`` (Ctrl-C): every actor stops, its run in flight is killed and recorded
   ``interrupted``; actors still busy after ``stop_grace`` are killed (their guard kills
   the run's process group).

``resume``: the agents start afresh from memory (their claims settled, their base and
experiment count read back); the swarm's noise and baseline come from ``swarm.json``.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from agents.baseline import BaselineError, Seat
from agents.board import AgentBoard, apply_event
from agents.cluster.actor import (
    AgentEnd,
    AgentSpec,
    AgentWorker,
    MemoryAccess,
    Placement,
    RunParams,
)
from agents.cluster.connect import (
    ClusterError,
    all_loopback,
    capacity,
    cluster_gpus,
    connect,
    driver_address,
    require_ray,
)
from agents.cluster.options import ClusterConfig, MemoryServer, ServedMemory, share
from agents.cluster.packing import pack_task
from agents.cluster.recover import agent_progress, settle_claims
from agents.devices import Device
from agents.execute import Bench, Outcome
from agents.program import Program
from agents.swarm import (
    SwarmConfig,
    SwarmError,
    SwarmHome,
    SwarmResult,
    check_short_budget,
    measure_on_board,
    recorded_space,
    resolve_retest,
    start_program,
)
from agents.task import load_task
from agents.tracing import Author, set_agent
from agents.workspace import protected_hashes
from memory.base import Store
from memory.models import SwarmCreate

log = logging.getLogger(__name__)

ACTOR_CONCURRENCY = 4  # run_agent, plus stop / events / ping while it works


class RemoteBench:
    """The part of a :class:`~agents.execute.Bench` that noise measurement uses, executed
    by an agent's actor on its node."""

    def __init__(self, actor: Any, budget: float, logs_dir: Path, timeout: float) -> None:
        self.actor = actor
        self.budget = budget
        self.logs_dir = logs_dir
        self.timeout = timeout  # the run's hard timeout plus time to place the actor again

    def execute(self, program: Program, log_name: str, *, seed: int | None = None) -> Outcome:
        ray = require_ray()
        ref = self.actor.execute.remote(self.budget, program.as_dict(), log_name, seed)
        try:
            return cast(Outcome, ray.get(ref, timeout=self.timeout))
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            raise BaselineError(f"a baseline replicate's agent was lost: {exc}") from None


@dataclass
class _Agent:
    name: str
    actor: Any
    placement: Placement | None = None
    run_ref: Any = None
    events_ref: Any = None
    asked_at: float = 0.0  # when the pending events call was sent
    answered_at: float = field(default_factory=time.time)
    ended: bool = False


class ClusterSwarm:
    """A swarm whose agents are Ray actors (see the module docstring). It shows the
    embedded :class:`~agents.swarm.Swarm`'s face to the live view and the CLI."""

    def __init__(
        self,
        config: SwarmConfig,
        cluster: ClusterConfig,
        store: Store,
        *,
        memory: MemoryAccess | None = None,
        serve: MemoryServer | None = None,
        resume: str | None = None,
    ) -> None:
        if memory is None and serve is None:
            raise SwarmError("an embedded memory must be served to the agents (no server given)")
        self.cluster = cluster
        self.store = store
        self.memory = memory
        self.serve = serve
        self.stop_event = threading.Event()
        self.board: dict[str, AgentBoard] = {}
        self.board_lock = threading.Lock()
        home = SwarmHome.open(config, resume)
        self.config, self.swarm_id, self.directory = home.config, home.swarm_id, home.directory
        self.config = resolve_retest(self.config, self.config.agents or 1, cluster=True)
        if self.config.finalists:
            raise SwarmError(
                "finalists: not run on a Ray cluster yet (the embedded swarm re-measures them "
                "after its agents finish); run without --finalists"
            )
        self.meta, self.resuming = home.meta, home.resuming
        self.want_gpu, self.cpus = share(self.config.devices)
        self.task = load_task(self.config.task)
        self.expected: dict[str, str] = self.meta.get("protected") or protected_hashes(self.task)
        self.root_diff = ""
        if self.config.start_from:
            self.root, self.root_diff = start_program(store, self.task, self.config.start_from)
        else:
            self.root = Program.read(self.task.root, self.task.editable)
        self.names: list[str] = list(self.meta.get("agents", []))
        self.devices: list[Device] = []
        self.budget: float = float(self.meta.get("budget", 0.0))
        self.hardware: str = str(self.meta.get("hardware", ""))
        self.space: dict[str, dict[str, Any]] = {}  # set with the devices (_place)
        self.noise: float = float(self.meta.get("noise", 0.0))
        self.baseline_id: str | None = self.meta.get("baseline_id")
        self.result: SwarmResult | None = None
        self._agents: dict[str, _Agent] = {}
        self._served: ServedMemory | None = None
        self._archive: Any = None
        self._runner: threading.Thread | None = None
        self._done = threading.Event()

    # -- live view ------------------------------------------------------------------

    def on_event(self, agent: str, event: str, data: dict[str, Any]) -> None:
        with self.board_lock:
            b = self.board.get(agent)
            if b is not None:
                apply_event(b, event, data)

    def stop(self) -> None:
        """Stop every agent; runs in flight are killed and recorded ``interrupted``.

        Called from another thread while :meth:`run` works, it returns once the run has
        ended (at most ``stop_grace`` plus a minute): a ``Thread.join`` that a Ctrl-C
        interrupted may return at once on Python 3.11 while the thread still runs, and
        the process must not exit before its agents stopped."""
        self.stop_event.set()
        runner = self._runner
        if runner is not None and runner is not threading.current_thread():
            if not self._done.wait(timeout=self.cluster.stop_grace + 60):
                log.warning("the swarm did not end within its stop grace")

    # -- the run ----------------------------------------------------------------------

    def run(self) -> SwarmResult:
        """Place the agents, measure the noise (first run only), run them to their end."""
        self._runner = threading.current_thread()
        try:
            self._run()
        finally:
            self._done.set()
        assert self.result is not None
        return self.result

    def _run(self) -> None:
        ray = require_ray()
        try:
            # Ray's workers import from the driver's directory first: join from the
            # swarm's own, never from wherever the command was started (connect.py)
            self.directory.mkdir(parents=True, exist_ok=True)
            started = connect(self.cluster.address, self.directory.resolve())
        except ClusterError as exc:
            raise SwarmError(str(exc)) from None
        result = SwarmResult(self.swarm_id, self.directory, self.noise, [])
        self.result = result
        status = "stopped"
        try:
            self._place(self._access())
            result.agents = list(self.names)
            self._save_meta()
            self._upsert_swarm("running")
            live = self._prepare(result)
            if self.baseline_id is None:
                self._measure_noise(live)
                result.noise = self.noise
                self._save_meta()
                self._upsert_swarm("running")
            self._run_agents(live, result)
            status = "stopped" if self.stop_event.is_set() else "finished"
        finally:
            self._kill_all()
            if self.hardware:
                self._mark_stopped()
                self._upsert_swarm(status)
            if self._served is not None:
                self._served.close()
            if started:
                ray.shutdown()

    def _access(self) -> MemoryAccess:
        if self.memory is not None:
            return self.memory
        assert self.serve is not None
        local = self.cluster.address == "local" or all_loopback()
        host = "127.0.0.1" if local else driver_address()
        self._served = self.serve(self.store, host, secrets.token_urlsafe(32))
        log.info("serving this swarm's memory to the agents on %s", self._served.url)
        return MemoryAccess(self._served.url, token=self._served.token)

    def _place(self, access: MemoryAccess) -> None:
        ray = require_ray()
        gpu = self.want_gpu and cluster_gpus() > 0
        room = capacity(gpu, self.cpus)
        what = "GPU(s)" if gpu else f"CPU share(s) of {self.cpus}"
        n = len(self.names) or self.config.agents or room
        if n < 1 or n > room:
            raise SwarmError(f"--agents {n}: the cluster has room for {room} ({what})")
        if not self.names:
            self.names = [f"agent-{i}" for i in range(n)]
        # held for the swarm's life: Ray reads it again to restart an actor elsewhere
        self._archive = archive = ray.put(pack_task(self.task.root))
        worker = ray.remote(AgentWorker)
        for i, name in enumerate(self.names):
            spec = AgentSpec(
                swarm_id=self.swarm_id,
                name=name,
                index=i,
                root=self.root.as_dict(),
                expected=self.expected,
                config=self.config,
                memory=access,
                node_dir=self.cluster.node_dir,
                gpu=gpu,
                cpus=self.cpus,
            )
            options: dict[str, Any] = {
                "num_gpus": 1 if gpu else 0,
                "num_cpus": 0 if gpu else self.cpus,
                "max_restarts": self.cluster.max_restarts,
                # a call to a restarting actor waits for it (bounded by max_restarts)
                "max_task_retries": -1,
                "max_concurrency": ACTOR_CONCURRENCY,
                "scheduling_strategy": "SPREAD",
            }
            self._agents[name] = _Agent(name, worker.options(**options).remote(spec, archive))
        refs = {a.actor.place.remote(): a for a in self._agents.values()}
        ready, missing = ray.wait(
            list(refs), num_returns=len(refs), timeout=self.cluster.placement_timeout
        )
        if missing:
            names = ", ".join(refs[r].name for r in missing)
            raise SwarmError(
                f"Ray could not place {names} within {self.cluster.placement_timeout:g} s "
                f"(each needs one of the cluster's {what}, free now)"
            )
        for ref in ready:
            try:
                refs[ref].placement = ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise SwarmError(f"{refs[ref].name} could not start: {exc}") from None
        placements = [self._agents[n].placement for n in self.names]
        self.devices = [p.device for p in placements if p is not None]
        kind = "cuda" if any(d.kind == "cuda" for d in self.devices) else "cpu"
        if not self.budget:
            self.budget = self.config.budget or self.task.default_budget(kind)
            if self.config.budget is None and self.config.quick_budget and kind == "cpu":
                self.budget = min(self.budget, self.config.quick_budget)
        check_short_budget(self.config, self.budget)
        if not self.hardware:
            self.hardware = self.devices[0].hardware
        self.space = recorded_space(self.config, self.task, self.root, kind)
        for name, device in zip(self.names, self.devices, strict=True):
            self.board[name] = AgentBoard(name=name, device=device.name)
            log.info("%s on %s", name, device.name)

    def _author(self, name: str) -> Author:
        placement = self._agents[name].placement
        assert placement is not None
        agent_id = f"{self.swarm_id}/{name}"
        return Author(self.task, self.swarm_id, agent_id, placement.device, self.budget)

    def _prepare(self, result: SwarmResult) -> list[str]:
        """The setup step on every agent; the agents whose setup succeeded."""
        ray = require_ray()
        refs = {a.actor.prepare.remote(self.budget): a.name for a in self._agents.values()}
        live = []
        for ref, name in refs.items():
            try:
                error = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                error = f"lost before its first run: {exc}"
            if error:
                result.stop_reasons[name] = error
                self.on_event(name, "stopped", {"reason": f"setup failed: {error}"})
                self._agents[name].ended = True
            else:
                live.append(name)
        if not live:
            raise SwarmError("; ".join(f"{n}: {result.stop_reasons[n]}" for n in self.names))
        return live

    def _measure_noise(self, live: list[str]) -> None:
        seats = []
        for name in live:
            agent = self._agents[name]
            assert agent.placement is not None
            logs = Path(agent.placement.device.name.split("/")[0] + ":" + self._home(name))
            wait = self.task.hard_timeout(self.budget) + self.cluster.placement_timeout
            bench = RemoteBench(agent.actor, self.budget, logs / "logs", wait)
            seats.append(Seat(name, self._author(name), cast(Bench, bench)))

        measure_on_board(self, seats)

    def _home(self, name: str) -> str:
        base = self.cluster.node_dir or "<node tmp>"
        return f"{base}/labswarm-cluster/{self.swarm_id}/{name}"

    def _run_agents(self, live: list[str], result: SwarmResult) -> None:
        ray = require_ray()
        assert self.baseline_id is not None
        hours = self.config.hours
        params = RunParams(
            budget=self.budget,
            hardware=self.hardware,
            noise=self.noise,
            baseline_id=self.baseline_id,
            max_experiments=self.config.max_experiments,
            deadline=time.time() + hours * 3600 if hours else None,
            max_refusals=self.config.max_refusals,
            recall=self.config.recall,
        )
        running: dict[Any, _Agent] = {}
        for name in live:
            agent = self._agents[name]
            agent.run_ref = agent.actor.run_agent.remote(params)
            agent.answered_at = time.time()
            running[agent.run_ref] = agent
        stopping_since: float | None = None
        while running:
            if self.stop_event.is_set() and stopping_since is None:
                stopping_since = time.time()
                log.info("stopping %d agent(s)", len(running))
                for agent in running.values():
                    agent.actor.stop.remote()
            ready, _ = ray.wait(list(running), num_returns=1, timeout=self.cluster.poll_s)
            for ref in ready:
                self._ended(running.pop(ref), ref, result)
            self._poll_events()
            now = time.time()
            overdue = stopping_since is not None and now - stopping_since > self.cluster.stop_grace
            silent = all(now - a.answered_at > self.cluster.lost_after for a in running.values())
            if running and (overdue or silent):
                for agent in running.values():
                    why = "did not stop in time" if overdue else "cannot be placed again"
                    log.warning("%s %s: killing it", agent.name, why)
                    ray.kill(agent.actor, no_restart=True)
        self._poll_events(final=True)

    def _ended(self, agent: _Agent, ref: Any, result: SwarmResult) -> None:
        ray = require_ray()
        agent.ended = True
        try:
            end: AgentEnd = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            settled = settle_claims(
                self.store,
                self._author(agent.name),
                f"the agent's node was lost: {exc}",
                self.config.short_budget,
            )
            reason = "lost: its process or node died and Ray could not place it again"
            if settled:
                reason += f" ({len(settled)} run(s) in flight recorded interrupted)"
            log.warning("%s %s", agent.name, reason)
            result.stop_reasons[agent.name] = reason
            self.on_event(agent.name, "stopped", {"reason": reason})
            return
        except ray.exceptions.RayError as exc:
            result.errors.append(f"{agent.name}: {exc}")
            result.stop_reasons[agent.name] = f"error: {exc}"
            self.on_event(agent.name, "stopped", {"reason": f"error: {exc}"})
            return
        result.stop_reasons[agent.name] = end.stop_reason
        log.info("%s ended: %s", agent.name, end.stop_reason)
        if end.error:
            result.errors.append(f"{agent.name}: {end.error}")

    def _poll_events(self, final: bool = False) -> None:
        """Apply the agents' live-view events; note who answers (a restarting actor does
        not) and which node each one is on now."""
        ray = require_ray()
        now = time.time()
        for agent in self._agents.values():
            if agent.events_ref is None and (not agent.ended or final):
                agent.events_ref, agent.asked_at = agent.actor.events.remote(), now
        pending = [a.events_ref for a in self._agents.values() if a.events_ref is not None]
        if not pending:
            return
        timeout = 5.0 if final else 0.0
        ready, _ = ray.wait(pending, num_returns=len(pending), timeout=timeout)
        done = set(ready)
        for agent in self._agents.values():
            if agent.events_ref is None or agent.events_ref not in done:
                continue
            ref, agent.events_ref = agent.events_ref, None
            try:
                device_name, events = ray.get(ref)
            except ray.exceptions.RayError:
                continue
            agent.answered_at = now
            with self.board_lock:
                board = self.board[agent.name]
                board.device = device_name
                for event, data in events:
                    apply_event(board, event, data)
            if agent.placement is not None and device_name != agent.placement.device.name:
                log.info("%s now runs on %s", agent.name, device_name)

    def _kill_all(self) -> None:
        ray = require_ray()
        for agent in self._agents.values():
            try:
                ray.kill(agent.actor, no_restart=True)
            except Exception:  # already gone
                log.debug("killing %s failed", agent.name, exc_info=True)

    # -- memory records -----------------------------------------------------------

    def _save_meta(self) -> None:
        self.meta.update(
            swarm_id=self.swarm_id,
            config=asdict(self.config),
            task_dir=str(self.task.root),
            budget=self.budget,
            hardware=self.hardware,
            devices=[d.name for d in self.devices],
            noise=self.noise,
            baseline_id=self.baseline_id,
            agents=self.names,
            protected=self.expected,
            ray={"address": self.cluster.address, "node_dir": self.cluster.node_dir},
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / "swarm.json.tmp"
        tmp.write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        tmp.replace(self.directory / "swarm.json")

    def _upsert_swarm(self, status: str) -> None:
        config = {**asdict(self.config), "budget": self.budget, "noise": self.noise}
        config.update(ray=self.cluster.address, space=self.space)
        self.store.upsert_swarm(
            SwarmCreate(
                id=self.swarm_id,
                task=self.task.name,
                name=self.swarm_id,
                status=status,
                hardware=self.hardware,
                config=config,
            )
        )

    def _mark_stopped(self) -> None:
        for name, agent in self._agents.items():
            if agent.placement is None:
                continue
            try:
                with self.board_lock:
                    where = self.board[name].device  # its node now (after a restart too)
                author = self._author(name)
                author = replace(author, device=replace(author.device, name=where))
                base_id, done = agent_progress(self.store, self.swarm_id, author.agent_id)
                set_agent(
                    self.store,
                    author,
                    name,
                    "stopped",
                    base_id=base_id or self.baseline_id,
                    experiments=done,
                )
            except Exception:  # a memory error here must not hide why the swarm ended
                log.exception("%s: recording its stopped status failed", name)
