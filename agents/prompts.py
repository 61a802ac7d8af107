"""Prompts of the LLM proposer."""

from __future__ import annotations

import json

from agents.proposers.base import ProposalRequest
from memory.models import ExperimentPublic, Status

SYSTEM = """\
You are a machine-learning researcher improving a program by small experiments. Each \
experiment changes the program, runs it for a fixed time budget and measures \
{metric} ({goal}). Propose exactly ONE change that you expect to improve {metric}. \
Do not repeat a change that already ran, and avoid changes like the recorded failures.

Answer with one JSON object and nothing else:
{{"hypothesis": "<one sentence: what you change and why it should help>",
  "edits": [{{"path": "<file>", "search": "<exact text copied from the file>", \
"replace": "<new text>"}}]}}

Rules: "path" is one of: {editable}. Each "search" text must occur exactly once in that \
file, character for character (copy a whole line). The program must still compile."""

EXAMPLE_NOTE = (
    'Example of the shape (values are only an example): {"hypothesis": "a larger learning '
    'rate trains faster in a short budget", "edits": [{"path": "train.py", "search": '
    '"LR = 0.01", "replace": "LR = 0.02"}]}'
)

MAX_NOTES = 4000
MAX_FILE = 12000
MAX_DIFF = 1500


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n[... cut ...]"


def _trace_line(t: ExperimentPublic, metric_name: str) -> str:
    metric = f"{metric_name}={t.metric:.6g}" if t.metric is not None else "no metric"
    failed = t.status in (Status.crash, Status.timeout, Status.invalid)
    label = f"FAILED ({t.status.value})" if failed else t.status.value
    line = f"- [{label}] {t.hypothesis or '(no hypothesis)'} -> {metric}"
    if failed and t.error:
        line += f"; error: {t.error[:200]}"
    if t.knobs:
        line += f"; knobs: {json.dumps(t.knobs)}"
    return line


def system_prompt(request: ProposalRequest) -> str:
    task = request.task
    goal = "lower is better" if task.direction == "minimize" else "higher is better"
    return SYSTEM.format(metric=task.metric_name, goal=goal, editable=", ".join(task.editable))


def user_prompt(request: ProposalRequest) -> str:
    """Notes, the base files, the champion, recalled traces (failures marked), feedback."""
    task = request.task
    parts: list[str] = [f"# Task: {task.name}", task.description.strip()]
    if task.notes.strip():
        parts += ["## Notes", _clip(task.notes.strip(), MAX_NOTES)]
    base_metric = (
        f"{request.base_metric:.6g}" if request.base_metric is not None else "not measured"
    )
    parts.append(f"## Base program ({task.metric_name} = {base_metric})")
    for path, text in request.base.files:
        parts.append(f"### {path}\n```\n{_clip(text, MAX_FILE)}\n```")
    champ = request.champion
    if champ is not None and champ.metric is not None:
        if request.base_trace is not None and champ.fingerprint == request.base_trace.fingerprint:
            parts.append("## Champion\nThe base program is the best kept program so far.")
        else:
            parts.append(
                f"## Champion ({task.metric_name} = {champ.metric:.6g}): {champ.hypothesis}\n"
                f"```diff\n{_clip(champ.diff, MAX_DIFF)}\n```"
            )
    if request.related:
        parts.append("## Experiments already run near this one (do not repeat them)")
        parts += [_trace_line(t, task.metric_name) for t in request.related]
    if request.claims:
        parts.append("## Running right now on other agents (do not duplicate)")
        parts += [f"- {c.hypothesis}" for c in request.claims]
    if request.findings:
        parts.append("## Prior findings")
        parts += [
            f"- [{f.outcome}] {f.change}"
            + (f" ({f.before:.6g} -> {f.after:.6g})" if f.before and f.after else "")
            for f in request.findings
        ]
    if request.feedback:
        parts.append("## Your previous answers were refused")
        parts += [f"- {fb}" for fb in request.feedback[-3:]]
        parts.append("Fix this in your next answer.")
    parts.append(EXAMPLE_NOTE)
    parts.append("Answer with the JSON object only.")
    return "\n\n".join(p for p in parts if p)
