"""CPU speed of the built-in trainer against a plain PyTorch GPT of the same size.

Runs ``trainer/train.py`` with its default knobs for BUDGET seconds, then, in the same
process, on the same data loader and for the same budget, a plain GPT (LayerNorm, learned
positions, GELU MLP, untied head, AdamW, no schedule) with the same depth, width, heads,
sequence length and batch. Both are scored by the harness's ``evaluate_bpb``. Prints
tokens/s and val_bpb side by side and their ratios.

Run from the repository root::

    LABSWARM_THREADS=1 python benchmarks/trainer_speed.py 60      # budget in seconds
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import runpy
import sys
import time
from pathlib import Path
from typing import TextIO

TRAINER = Path(__file__).resolve().parent.parent / "trainer"


class Tee(io.TextIOBase):
    """Echo to the real stdout while keeping a copy."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.buf = io.StringIO()

    def write(self, s: str) -> int:
        self.out.write(s)
        self.out.flush()
        return self.buf.write(s)


def run_harness(budget: float) -> dict[str, float]:
    """Run train.py in this process (as ``__main__``), return its measured numbers."""
    os.environ["LABSWARM_TIME_BUDGET"] = str(budget)
    os.environ.setdefault("LABSWARM_DEVICE", "cpu")
    sys.path.insert(0, str(TRAINER))
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        g = runpy.run_path(str(TRAINER / "train.py"), run_name="__main__")
    timed_steps = g["step"] - g["untimed_steps"]
    return {
        "val_bpb": g["val_bpb"],
        "tokens_per_s": timed_steps * g["tokens_per_step"] / g["training_time"],
        "steps": g["step"],
        "params_M": g["num_params"] / 1e6,
        "training_seconds": g["training_time"],
        "depth": g["DEPTH"],
        "width": g["WIDTH"],
        "n_head": g["N_HEAD"],
        "seq_len": g["SEQ_LEN"],
        "batch": g["BATCH_SIZE"],
    }


def run_plain(budget: float, shape: dict[str, float]) -> dict[str, float]:
    """A textbook GPT of the same shape, trained with AdamW on the same loader and budget."""
    import prepare  # the harness, already on sys.path
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    depth, width, n_head = int(shape["depth"]), int(shape["width"]), int(shape["n_head"])
    seq_len, batch = int(shape["seq_len"]), int(shape["batch"])
    device = prepare.setup_device()
    data = prepare.load_data(device, "byte")
    vocab = data.tokenizer.vocab_size

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(width)
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)
            self.ln2 = nn.LayerNorm(width)
            self.mlp = nn.Sequential(
                nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            B, T, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
            return x + self.mlp(self.ln2(x))

    class PlainGPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(vocab, width)
            self.pos = nn.Embedding(seq_len, width)
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.ln = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab, bias=False)
            for m in self.modules():
                if isinstance(m, nn.Linear | nn.Embedding):
                    nn.init.normal_(m.weight, std=0.02)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            pos = torch.arange(idx.size(1), device=idx.device)
            return self.head(self.ln(self.blocks(self.tok(idx) + self.pos(pos))))

    torch.manual_seed(1337)
    model = PlainGPT().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    loader = prepare.train_loader(data.train_tokens, batch, seq_len, device, seed=1337)
    untimed = prepare.UNTIMED_STEPS[device.type]
    training_time, step = 0.0, 0
    while training_time < budget:
        t0 = time.perf_counter()
        x, y = next(loader)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, vocab), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise SystemExit(f"plain GPT diverged at step {step}")
        if step >= untimed:
            training_time += time.perf_counter() - t0
        step += 1
    val_bpb = prepare.evaluate_bpb(model, data.val_tokens, data.token_bytes, seq_len, batch, device)
    return {
        "val_bpb": val_bpb,
        "tokens_per_s": (step - untimed) * batch * seq_len / training_time,
        "steps": step,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "training_seconds": training_time,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("budget", type=float, nargs="?", default=60.0, help="seconds per run")
    args = parser.parse_args()
    harness = run_harness(args.budget)
    plain = run_plain(args.budget, harness)
    import torch

    print(
        f"\nCPU, {torch.get_num_threads()} threads, budget {args.budget:g} s, "
        f"shape depth={harness['depth']} width={harness['width']} heads={harness['n_head']} "
        f"seq={harness['seq_len']} batch={harness['batch']}"
    )
    print(f"{'':12} {'tokens/s':>10} {'val_bpb':>9} {'steps':>6} {'params_M':>9} {'train_s':>8}")
    for name, r in (("labswarm", harness), ("plain GPT", plain)):
        print(
            f"{name:12} {r['tokens_per_s']:10,.0f} {r['val_bpb']:9.4f} {r['steps']:6d} "
            f"{r['params_M']:9.3f} {r['training_seconds']:8.1f}"
        )
    ratio = harness["tokens_per_s"] / plain["tokens_per_s"]
    print(f"speed ratio (labswarm / plain tokens/s): {ratio:.2f}")
    print(f"val_bpb difference (labswarm - plain): {harness['val_bpb'] - plain['val_bpb']:+.4f}")


if __name__ == "__main__":
    main()
