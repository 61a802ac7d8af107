"""One agent of a cluster swarm, as a Ray actor on some node.

The driver wraps :class:`AgentWorker` with ``ray.remote`` (one GPU or a CPU share each)
and gives it an :class:`AgentSpec` and the task directory's archive (from the object
store). On its node the actor

1. unpacks the task into its own directory (``<node dir>/<swarm id>/<agent>/task``),
   checks the protected files, detects its device there (:mod:`agents.devices`), opens
   the swarm's memory (:class:`MemoryAccess`), and starts a guard process
   (:mod:`agents.cluster.guard`) that kills its run if the actor dies;
2. runs the task's setup step and baseline replicates when the driver asks
   (:meth:`AgentWorker.prepare`, :meth:`AgentWorker.execute`);
3. runs the agent's graph (:mod:`agents.graph`, the same nodes as the embedded swarm) to
   its end (:meth:`AgentWorker.run_agent`), after settling what an earlier incarnation
   left in memory (:mod:`agents.cluster.recover`).

Ray restarts a dead actor (``max_restarts``) by running ``__init__`` again where it can
place it, and retries its ``run_agent``; everything it needs is in its arguments and in
memory, nothing on the dead node. The actor is threaded (``max_concurrency``), so
``stop``, ``events`` and ``ping`` answer while ``run_agent`` works.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agents.cluster.guard import start_guard
from agents.cluster.packing import unpack_task
from agents.cluster.recover import agent_progress, settle_claims
from agents.devices import Device, cpu_count, cpu_devices, detect_gpus, short_gpu_name
from agents.execute import Bench, Outcome, SetupFailed
from agents.program import Program
from agents.swarm import (
    RECURSION_LIMIT,
    SwarmConfig,
    ablation_switches,
    default_proposer_factory,
    judge_rules,
    swarm_seed,
)
from agents.tracing import Author, setup_failure, write_trace
from agents.workspace import Workspace
from memory.base import Store

log = logging.getLogger(__name__)

MAX_EVENTS = 10_000  # events kept for the driver between two polls


@dataclass(frozen=True)
class MemoryAccess:
    """How an agent on another node reaches the swarm's one memory: a labswarm server
    (``http(s)://``, with its bearer token) or a team store (``postgresql://`` with a
    Chroma server), opened with the driver's embedder."""

    target: str
    token: str | None = None
    embedder: str = "minilm"
    chroma_url: str | None = None
    max_tasks: int = 64

    def open(self) -> Store:
        from pydantic import SecretStr

        from memory import get_store
        from memory.settings import Settings

        token = SecretStr(self.token) if self.token is not None else None
        settings = Settings(token=token, chroma_url=self.chroma_url, max_tasks=self.max_tasks)
        return get_store(self.target, embedder=self.embedder, settings=settings)

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"MemoryAccess({self.target!r}, token={'***' if self.token else None})"


@dataclass(frozen=True)
class AgentSpec:
    """Everything one agent needs on its node, fixed for the swarm's life."""

    swarm_id: str
    name: str
    index: int  # its place in the swarm (for its proposer's seed)
    root: dict[str, str]  # the swarm's root program (path -> text)
    expected: dict[str, str]  # protected hashes of the task directory
    config: SwarmConfig
    memory: MemoryAccess
    node_dir: str | None  # where agents keep their directories on a node (None: tmp)
    gpu: bool  # placed on a GPU (else on a CPU share of ``cpus``)
    cpus: int

    @property
    def agent_id(self) -> str:
        return f"{self.swarm_id}/{self.name}"


@dataclass(frozen=True)
class Placement:
    """Where Ray put an agent: the node and the device detected there."""

    name: str
    node_id: str
    node_ip: str
    device: Device
    pid: int


@dataclass(frozen=True)
class RunParams:
    """What the driver decided once every agent was placed."""

    budget: float
    hardware: str  # the swarm's hardware class; an agent on another class does not run
    noise: float
    baseline_id: str
    max_experiments: int | None
    deadline: float | None  # epoch seconds (the nodes' clocks are assumed in sync)
    max_refusals: int
    recall: bool


@dataclass(frozen=True)
class AgentEnd:
    """How an agent's loop ended."""

    name: str
    stop_reason: str
    experiments: int
    error: str = ""
    interrupted: tuple[str, ...] = ()  # traces recorded for runs a dead incarnation left


def node_label(node_ip: str, node_id: str) -> str:
    """How a node is shown: its address and the head of its Ray id (simulated nodes of
    one machine share the address)."""
    return f"{node_ip}#{node_id[:6]}"


def node_device(gpu: bool, cpus: int, gpus_on_node: int, label: str) -> Device:
    """The device of an agent on this node: the GPU Ray assigned (``CUDA_VISIBLE_DEVICES``
    is set for the actor), else a CPU share; its name carries the node's label
    (``10.0.0.7#3fa2c1/cuda:5``, ``10.0.0.7#3fa2c1/cpu:2``)."""
    found = detect_gpus() if gpu else []
    if found:
        g = found[0]
        threads = max(1, cpu_count() // max(1, gpus_on_node))
        name = f"{label}/cuda:{g.index}"
        return Device("cuda", name, f"1x{short_gpu_name(g.name)}", threads, g.index)
    if gpu:
        log.warning("placed on a GPU slot, but no GPU is visible here: running on the CPU")
        cpus = max(1, cpu_count() // max(1, gpus_on_node))
    (device,) = cpu_devices(1, max(1, cpus))
    # Ray pins no core: the name says the share (as --devices cpu:N), not cpu[0] for every
    # agent of the node, which read as one core shared
    return replace(device, name=f"{label}/cpu:{device.threads}")


class AgentWorker:
    """The body of one agent actor (see the module docstring)."""

    def __init__(self, spec: AgentSpec, archive: bytes) -> None:
        import ray

        self.spec = spec
        ctx = ray.get_runtime_context()
        self.node_id = ctx.get_node_id()
        self.node_ip = ray.util.get_node_ip_address()
        base = Path(spec.node_dir) if spec.node_dir else Path(tempfile.gettempdir())
        self.home = (base / "labswarm-cluster" / spec.swarm_id / spec.name).resolve()
        self.task = unpack_task(archive, self.home / "task", spec.expected)
        gpus_on_node = 0
        for node in ray.nodes():
            if node.get("NodeID") == self.node_id:
                gpus_on_node = int(node.get("Resources", {}).get("GPU", 0))
        label = node_label(self.node_ip, self.node_id)
        self.device = node_device(spec.gpu, spec.cpus, gpus_on_node, label)
        self.workspace = Workspace(self.task, self.home / "work", spec.expected)
        self.workspace.reap_stale_run()  # an earlier incarnation's run on this node
        self.guard = start_guard(os.getpid(), self.workspace.path)
        self.store = spec.memory.open()
        self.stop_event = threading.Event()
        self.bench: Bench | None = None
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        log.info("%s placed on %s (%s)", spec.name, label, self.device.name)

    # -- what the driver asks -----------------------------------------------------

    def place(self) -> Placement:
        return Placement(self.spec.name, self.node_id, self.node_ip, self.device, os.getpid())

    def ping(self) -> str:
        return self.node_id

    def stop(self) -> None:
        """Stop: the run in flight is killed and recorded ``interrupted``."""
        self.stop_event.set()

    def events(self) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """This agent's device (its node in the name) and its live-view events since the
        last call (oldest first)."""
        with self._lock:
            out, self._events = self._events, []
        return self.device.name, out

    def _on_event(self, agent: str, event: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._events.append((event, data))
            del self._events[:-MAX_EVENTS]

    def _author(self, budget: float) -> Author:
        return Author(self.task, self.spec.swarm_id, self.spec.agent_id, self.device, budget)

    def _bench(self, budget: float) -> Bench:
        if self.bench is None or self.bench.budget != budget:
            self.bench = Bench(
                task=self.task,
                workspace=self.workspace,
                device=self.device,
                budget=budget,
                logs_dir=self.home / "logs",
                home=self.home,
                expected=self.spec.expected,
                stop=self.stop_event,
                python=self.spec.config.python or sys.executable,
            )
        return self.bench

    def prepare(self, budget: float) -> str:
        """Run the task's setup step here; "" if done, else why it failed (recorded)."""
        bench = self._bench(budget)
        try:
            bench.ensure_setup()
        except SetupFailed as exc:
            write_trace(self.store, setup_failure(self._author(budget), exc, self.home))
            return str(exc)
        return ""

    def execute(
        self, budget: float, program: dict[str, str], log_name: str, seed: int | None = None
    ) -> Outcome:
        """Run ``program`` once here with ``seed`` (a baseline replicate); the driver
        records it."""
        return self._bench(budget).execute(Program.of(program), log_name, seed=seed)

    def run_agent(self, params: RunParams) -> AgentEnd:
        """Settle what an earlier incarnation left, then run the agent's graph to its end."""
        from langgraph.checkpoint.memory import InMemorySaver

        from agents.context import AgentContext
        from agents.graph import compile_graph
        from agents.library import ProgramLibrary
        from agents.nodes import end_reason
        from agents.state import InputState

        spec = self.spec
        if self.device.hardware != params.hardware:
            reason = (
                f"this node's hardware class {self.device.hardware} is not the swarm's "
                f"{params.hardware}; one swarm compares runs on one class"
            )
            self._on_event(spec.name, "stopped", {"reason": reason})
            return AgentEnd(spec.name, reason, 0)
        bench = self._bench(params.budget)
        author = self._author(params.budget)
        short = spec.config.short_budget
        settled = tuple(settle_claims(self.store, author, short_budget=short))
        base_id, done = agent_progress(self.store, spec.swarm_id, spec.agent_id)
        root = Program.of(spec.root)
        factory = default_proposer_factory(spec.config)
        seed = swarm_seed(spec.config) * 1000 + spec.index
        ctx = AgentContext(
            store=self.store,
            proposer=factory(self.task, root, self.device, spec.name, seed),
            bench=bench,
            library=ProgramLibrary(self.store, root, spec.swarm_id),
            swarm_id=spec.swarm_id,
            agent_name=spec.name,
            noise=params.noise,
            rules=judge_rules(spec.config, self.task),
            max_experiments=params.max_experiments,
            deadline=params.deadline,
            max_refusals=params.max_refusals,
            short_budget=spec.config.short_budget,
            recall=params.recall,
            on_event=self._on_event,
            **ablation_switches(spec.config),
        )
        graph = compile_graph(InMemorySaver())
        config: Any = {"configurable": {"thread_id": spec.agent_id}}
        config["recursion_limit"] = RECURSION_LIMIT
        start: InputState = {"base_id": base_id or params.baseline_id}
        try:
            if done:  # carry the count on: the graph's input is only the base
                graph.update_state(config, {**start, "experiments": done}, as_node="record")
                graph.invoke(None, config, context=ctx)
            else:
                graph.invoke(start, config, context=ctx)
            final = graph.get_state(config).values
            reason = end_reason(ctx, final)
            ctx.emit("stopped", reason=reason)
            return AgentEnd(spec.name, reason, int(final.get("experiments", done)), "", settled)
        except Exception as exc:
            log.exception("%s failed", spec.name)
            try:  # a failed agent must not keep others off the program it claimed
                settle_claims(self.store, author, f"the agent failed: {exc}", short)
            except Exception:
                log.exception("%s: settling its claims failed", spec.name)
            ctx.emit("stopped", reason=f"error: {exc}")
            values = graph.get_state(config).values or {}
            error = f"{type(exc).__name__}: {exc}"
            return AgentEnd(
                spec.name, f"error: {exc}", int(values.get("experiments", done)), error, settled
            )
        finally:
            try:
                ctx.proposer.close()
            except Exception:  # closing must not hide the agent's own outcome
                log.exception("%s: closing the proposer failed", spec.name)
