"""The embedded swarm: one process, one memory owner, agents as threads, runs as
subprocesses, one device per agent.

1. Load the task, plan devices (one per agent), make each agent's workspace.
2. Measure the noise: replicate runs of the unmodified program on the agents' own
   devices, recorded with ``role=baseline`` (reused from memory when present).
3. Run every agent's graph in its own thread (SQLite checkpointer, one thread id each)
   until its experiment limit, the deadline, an exhausted search, or a stop.
4. ``resume``: reap runs a killed swarm left behind, record each cut-off run as
   ``interrupted`` and release its claim, then continue every agent from its checkpoint.

The swarm's directory (``runs/<swarm id>/``) holds ``swarm.json``, ``checkpoints.sqlite``,
the agents' workspaces and run logs, and at the end ``results.tsv`` and ``progress.png``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.board import AgentBoard, apply_event
from agents.context import AgentContext
from agents.devices import Device, plan_devices
from agents.judge import DEFAULT_REPLICATES
from agents.library import ProgramLibrary
from agents.program import Program
from agents.proposers.base import Proposer
from agents.task import Task, load_task
from agents.workspace import Workspace
from memory.base import Store
from memory.models import (
    Status,
    SwarmCreate,
    new_id,
)

log = logging.getLogger(__name__)

RUNS_DIR = Path("runs")
RECURSION_LIMIT = 1_000_000


class SwarmError(RuntimeError):
    """The swarm cannot start or go on (the message says why)."""


@dataclass
class SwarmConfig:
    """What ``labswarm run`` asks for. ``None`` means the default."""

    task: str | None = None  # task directory; None: the built-in trainer
    agents: int | None = None
    devices: str = "auto"
    budget: float | None = None  # seconds per run; None: the task's for the device kind
    max_experiments: int | None = None  # per agent
    hours: float | None = None
    proposer: str = "builtin"  # builtin | llm
    model: str | None = None
    base_url: str | None = None
    replicates: int = DEFAULT_REPLICATES
    seed: int = 0
    runs_dir: str = str(RUNS_DIR)
    python: str | None = None
    quick_budget: float | None = None  # without --budget: cap a CPU run at this many seconds
    max_refusals: int = 8  # proposals refused in a row before an agent gives up
    # False: each agent recalls only its own traces before proposing (claims and the
    # duplicate refusal stay shared) -- the benchmark's "recall off" arm.
    recall: bool = True


ProposerFactory = Callable[[Task, Program, Device, str, int], Proposer]


def default_proposer_factory(config: SwarmConfig) -> ProposerFactory:
    """Builds one proposer per agent from ``config.proposer``/``model``/``base_url``."""
    if config.proposer == "builtin":
        from agents.proposers.builtin import BuiltinProposer

        def make_builtin(task: Task, root: Program, device: Device, name: str, seed: int):
            return BuiltinProposer(task, root, device.kind, device.hardware, seed=seed)

        return make_builtin
    if config.proposer == "llm":
        if not config.model:
            raise SwarmError("--proposer llm needs --model (e.g. openai:gpt-4.1 or hf:/path.gguf)")
        from agents.proposers.llm import LLMProposer, make_chat_model

        chat = make_chat_model(config.model, config.base_url)

        def make_llm(task: Task, root: Program, device: Device, name: str, seed: int):
            return LLMProposer(chat)

        return make_llm
    raise SwarmError(f"--proposer {config.proposer!r}: expected 'builtin' or 'llm'")


@dataclass
class SwarmResult:
    swarm_id: str
    directory: Path
    noise: float
    agents: list[str]
    errors: list[str] = field(default_factory=list)
    stop_reasons: dict[str, str] = field(default_factory=dict)


def _latest_swarm(runs: Path) -> Path:
    found = sorted(runs.glob("*/swarm.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SwarmError(f"--resume: no swarm to resume under {runs}/")
    return found[-1].parent


class Swarm:
    """An embedded swarm over one ``store`` (the memory owner of this process)."""

    def __init__(
        self,
        config: SwarmConfig,
        store: Store,
        *,
        resume: str | None = None,
        proposer_factory: ProposerFactory | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.stop_event = threading.Event()
        self.board: dict[str, AgentBoard] = {}
        self.board_lock = threading.Lock()
        self.champion: tuple[str, float] | None = None
        runs = Path(config.runs_dir)
        if resume:
            self.directory = _latest_swarm(runs) if resume == "latest" else runs / resume
            meta_path = self.directory / "swarm.json"
            if not meta_path.is_file():
                raise SwarmError(f"--resume {resume}: no swarm.json in {self.directory}")
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            saved = SwarmConfig(**self.meta["config"])
            for key in ("max_experiments", "hours"):  # a resume may extend the limits
                if getattr(config, key) is not None:
                    setattr(saved, key, getattr(config, key))
            self.config = saved
            self.swarm_id = self.meta["swarm_id"]
            self.resuming = True
        else:
            self.swarm_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + new_id()[:6]
            self.directory = runs / self.swarm_id
            self.meta = {}
            self.resuming = False
        self.task = load_task(self.config.task)
        self.devices = plan_devices(self.config.agents, self.config.devices)
        kinds = {d.kind for d in self.devices}
        kind = "cuda" if "cuda" in kinds else "cpu"
        self.budget = self.config.budget or self.task.default_budget(kind)
        if self.config.budget is None and self.config.quick_budget and kind == "cpu":
            self.budget = min(self.budget, self.config.quick_budget)
        self.hardware = self.devices[0].hardware
        self.root = Program.read(self.task.root, self.task.editable)
        self.library = ProgramLibrary(store, self.root)
        self.names = [f"agent-{i}" for i in range(len(self.devices))]
        self.proposer_factory = proposer_factory or default_proposer_factory(self.config)
        self.noise: float = float(self.meta.get("noise", 0.0))
        self.baseline_id: str | None = self.meta.get("baseline_id")
        self.result: SwarmResult | None = None

    # -- events from the agents (for the live view) ---------------------------

    def on_event(self, agent: str, event: str, data: dict[str, Any]) -> None:
        with self.board_lock:
            b = self.board.get(agent)
            if b is None:
                return
            apply_event(b, event, data)

    # -- setup ------------------------------------------------------------------

    def workspace(self, name: str) -> Workspace:
        return Workspace(self.task, self.directory / "agents" / name / "work")

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
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / "swarm.json.tmp"
        tmp.write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        tmp.replace(self.directory / "swarm.json")

    def _upsert_swarm(self, status: str) -> None:
        self.store.upsert_swarm(
            SwarmCreate(
                id=self.swarm_id,
                task=self.task.name,
                name=self.swarm_id,
                status=status,
                hardware=self.hardware,
                config={**asdict(self.config), "budget": self.budget, "noise": self.noise},
            )
        )

    # -- noise --------------------------------------------------------------------

    def measure_noise(self) -> float:
        """Replicate runs of the unmodified program (see :mod:`agents.baseline`)."""
        from agents.baseline import measure_noise

        return measure_noise(self)

    # -- resume -------------------------------------------------------------------

    def _recover(self, graph: Any, config: dict, ctx: AgentContext) -> dict | None:
        """Input for an agent's thread: a fresh start, None to continue, or a restart."""
        snap = graph.get_state(config)
        values = snap.values or {}
        if not values:
            return {"base_id": self.baseline_id}
        if snap.next == ("run",) and values.get("claim_id"):
            from agents.records import write_trace

            trace_id = write_trace(
                ctx,
                values,
                Status.interrupted,
                id=values.get("trace_id"),
                fingerprint=values.get("fingerprint", ""),
                diff=values.get("diff", ""),
                knobs=values.get("knobs", {}),
                error="the swarm process stopped while this run was in flight (found on resume)",
            )
            self.store.release(values["claim_id"])
            graph.update_state(
                config,
                {
                    "claim_id": None,
                    "candidate": {},
                    "outcome": None,
                    "last_trace_id": trace_id,
                    "status": Status.interrupted.value,
                },
                as_node="record",
            )
            log.info("%s: recorded the cut-off run %s as interrupted", ctx.agent_name, trace_id)
            return None
        if not snap.next:  # finished before: go on with the (possibly extended) limits
            return {"base_id": values.get("base_id", self.baseline_id)}
        return None

    def _release_orphan_claims(self) -> None:
        for claim in self.store.active_claims(self.task.name):
            if claim.swarm_id == self.swarm_id:
                self.store.release(claim.id)
                log.info("released claim %s left by the stopped swarm", claim.id)

    # -- run ----------------------------------------------------------------------

    def _agent_main(self, graph: Any, ctx: AgentContext, checkpointer: Any, result: SwarmResult):
        config = {"configurable": {"thread_id": ctx.agent_id}, "recursion_limit": RECURSION_LIMIT}
        try:
            initial = self._recover(graph, config, ctx)
            graph.invoke(initial, config, context=ctx, durability="sync")
            final = graph.get_state(config).values
            reason = final.get("stop_reason") or (
                "too many refused proposals in a row" if final.get("refusals") else "stopped"
            )
            result.stop_reasons[ctx.agent_name] = reason
            ctx.emit("stopped", reason=reason)
        except Exception as exc:
            log.exception("%s failed", ctx.agent_name)
            result.errors.append(f"{ctx.agent_name}: {type(exc).__name__}: {exc}")
            try:  # a failed agent must not keep others off the program it claimed
                for claim in self.store.active_claims(self.task.name):
                    if claim.agent_id == ctx.agent_id:
                        self.store.release(claim.id)
            except Exception:
                log.exception("%s: releasing its claims failed", ctx.agent_name)
            ctx.emit("stopped", reason=f"error: {exc}")
        finally:
            try:
                ctx.proposer.close()
            except Exception:  # closing must not hide the agent's own outcome
                log.exception("%s: closing the proposer failed", ctx.agent_name)

    def run(self) -> SwarmResult:
        """Measure the noise (first run only), then run every agent to its end."""
        from langgraph.checkpoint.sqlite import SqliteSaver

        from agents.graph import compile_graph

        self.directory.mkdir(parents=True, exist_ok=True)
        for name, device in zip(self.names, self.devices, strict=True):
            self.board[name] = AgentBoard(name=name, device=device.name)
            ws = self.workspace(name)
            if self.resuming:
                ws.reap_stale_run()
        self._save_meta()
        self._upsert_swarm("running")
        if self.resuming:
            self._release_orphan_claims()
        result = SwarmResult(self.swarm_id, self.directory, self.noise, list(self.names))
        self.result = result
        conn = sqlite3.connect(self.directory / "checkpoints.sqlite", check_same_thread=False)
        status = "stopped"
        try:
            if self.baseline_id is None:
                self.measure_noise()
                result.noise = self.noise
                self._save_meta()
                self._upsert_swarm("running")
            checkpointer = SqliteSaver(conn)
            checkpointer.setup()
            graph = compile_graph(checkpointer)
            hours = self.config.hours
            deadline = time.time() + hours * 3600 if hours else None
            max_exp = self.config.max_experiments
            threads = []
            for i, (name, device) in enumerate(zip(self.names, self.devices, strict=True)):
                proposer = self.proposer_factory(
                    self.task, self.root, device, name, self.config.seed * 1000 + i
                )
                ctx = AgentContext(
                    task=self.task,
                    store=self.store,
                    proposer=proposer,
                    workspace=self.workspace(name),
                    device=device,
                    library=self.library,
                    swarm_id=self.swarm_id,
                    agent_name=name,
                    budget=self.budget,
                    noise=self.noise,
                    logs_dir=self.directory / "agents" / name / "logs",
                    stop=self.stop_event,
                    max_experiments=max_exp,
                    deadline=deadline,
                    python=self.config.python or sys.executable,
                    max_refusals=self.config.max_refusals,
                    recall=self.config.recall,
                    on_event=self.on_event,
                )
                t = threading.Thread(
                    target=self._agent_main,
                    args=(graph, ctx, checkpointer, result),
                    name=name,
                    daemon=True,
                )
                threads.append(t)
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(timeout=0.5)
            status = "stopped" if self.stop_event.is_set() else "finished"
        finally:
            conn.close()
            self._upsert_swarm(status)
        return result

    def stop(self) -> None:
        """Ask every agent to stop; runs in flight are killed and recorded ``interrupted``."""
        self.stop_event.set()
