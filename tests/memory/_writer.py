"""A writer process for the multi-process test: ``python -m tests.memory._writer URL NAME N``.

URL is a shared backend (PostgreSQL + a Chroma server): an embedded directory has one
owner process, so a second writer on one would be refused (``StoreInUse``).

Adds N traces and races for the shared claims ``race-0..19``; prints a JSON line with the
ids it wrote and the claims it won.
"""

from __future__ import annotations

import json
import sys

from memory import AlreadyClaimed, ClaimCreate, ExperimentCreate, Status, get_store


def main(url: str, name: str, n: int) -> None:
    won: list[str] = []
    written: list[str] = []
    with get_store(url, embedder="hash") as store:
        for i in range(n):
            if i % 5 == 0:
                fp = f"race-{i // 5}"
                try:
                    store.claim(ClaimCreate(task="mp", fingerprint=fp, agent_id=name))
                    won.append(fp)
                except AlreadyClaimed:
                    pass
            t = store.add_trace(
                ExperimentCreate(
                    task="mp",
                    agent_id=name,
                    fingerprint=f"{name}-{i}",
                    status=Status.discard,
                    hypothesis=f"{name} tries idea number {i}",
                    metric=1.0 + i / 1000,
                )
            )
            written.append(t.id)
    print(json.dumps({"won": won, "written": written}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
