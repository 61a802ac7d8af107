"""Train a small GPT for a fixed time budget and print its validation bits per byte.

This is the one file agents edit. Run from this directory::

    python train.py                                   # budget 300 s, device auto
    LABSWARM_TIME_BUDGET=60 LABSWARM_DEVICE=cpu LABSWARM_SEED=7 python train.py

The last lines of stdout are ``---`` and ``key: value`` lines (``val_bpb`` first). A NaN or
exploding loss exits 1 at once, with no summary; so does a model that is not causal
(``prepare.evaluate_bpb`` checks, and reports the metric to labswarm itself).
"""

import time

T_START = time.time()  # total_seconds counts from here, imports included

import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import prepare  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ---------------------------------------------------------------------------
# Knobs (edit these; *_CPU applies on a CPU share, *_CUDA on one GPU). CPU values were
# chosen by measured 60 s runs on a 2-core CPU; CUDA values are reasoned, run once on an
# H200 (README: val_bpb 2.23 at 300 s on the embedded corpus, which they overfit).
# ---------------------------------------------------------------------------

# Tokenizer: "byte" (256 symbols) or "bpe" (trained on the training split, cached on disk).
# On a GPU the embedded corpus is small: bytes overfit later than BPE; on a big corpus, BPE.
TOKENIZER_CPU = "byte"  # choices: byte | bpe
TOKENIZER_CUDA = "byte"  # choices: byte | bpe
BPE_VOCAB_SIZE = 4096  # only used with "bpe"

# Model shape. Width must divide by N_HEAD; head size = width / N_HEAD (even, for RoPE).
DEPTH_CPU = 4  # transformer blocks
DEPTH_CUDA = 6
WIDTH_CPU = 128  # model dimension
WIDTH_CUDA = 384
N_HEAD_CPU = 4  # attention heads per block
N_HEAD_CUDA = 6
MLP_RATIO = 4  # hidden units of the ReLU^2 MLP per model dimension
LOGIT_SOFTCAP = 15.0  # logits = cap * tanh(logits / cap); 0 disables
ROPE_BASE = 10000.0  # base period of the rotary position encoding

# Batch shape: sequences of SEQ_LEN tokens; BATCH_SIZE * GRAD_ACCUM sequences per step.
SEQ_LEN_CPU = 256  # context length in tokens
SEQ_LEN_CUDA = 512
BATCH_SIZE_CPU = 8  # sequences per forward pass
BATCH_SIZE_CUDA = 128
GRAD_ACCUM = 1  # forward passes whose gradients add up to one optimizer step

# Optimisation: Muon for the 2-D matrices inside the blocks, AdamW for embedding and head.
MATRIX_LR = 0.04  # Muon
EMBED_LR = 0.2  # AdamW, token embedding
HEAD_LR = 0.01  # AdamW, output head (untied)
ADAM_BETAS = (0.8, 0.95)  # AdamW momentum of the gradient and of its square
MUON_MOMENTUM = 0.95  # momentum of the Muon updates
WEIGHT_DECAY = 0.0  # decoupled, on the Muon matrices
DROPOUT_CPU = 0.0  # a 60 s CPU run never sees the corpus twice: no need
DROPOUT_CUDA = 0.2  # 300 s on a GPU makes many passes over a small corpus

# Schedule on progress = training time / budget (0 -> 1).
WARMUP_RATIO = 0.0  # linear LR warm-up over this fraction of the budget
WARMDOWN_RATIO = 0.4  # linear decay to FINAL_LR_FRAC over the last fraction
FINAL_LR_FRAC = 0.0  # learning rate at the end, as a fraction of the peak

# The run's seed (weights, dropout, batch order): labswarm gives every run its own, so two
# runs of one program differ the way honest repetitions do. Not a knob.
SEED = int(os.environ.get("LABSWARM_SEED", "1337"))
COMPILE = True  # torch.compile the model on CUDA (the first steps are off the clock)

# ---------------------------------------------------------------------------
# Device, data
# ---------------------------------------------------------------------------

device = prepare.setup_device()
on_cuda = device.type == "cuda"
TOKENIZER = TOKENIZER_CUDA if on_cuda else TOKENIZER_CPU
DEPTH = DEPTH_CUDA if on_cuda else DEPTH_CPU
WIDTH = WIDTH_CUDA if on_cuda else WIDTH_CPU
N_HEAD = N_HEAD_CUDA if on_cuda else N_HEAD_CPU
SEQ_LEN = SEQ_LEN_CUDA if on_cuda else SEQ_LEN_CPU
BATCH_SIZE = BATCH_SIZE_CUDA if on_cuda else BATCH_SIZE_CPU
DROPOUT = DROPOUT_CUDA if on_cuda else DROPOUT_CPU

torch.manual_seed(SEED)
if on_cuda:
    torch.cuda.manual_seed(SEED)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_cuda)

try:
    data = prepare.load_data(device, TOKENIZER, BPE_VOCAB_SIZE)
except prepare.CorpusError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
VOCAB_SIZE = data.tokenizer.vocab_size

# ---------------------------------------------------------------------------
# Model: RMSNorm, rotary embeddings, QK-norm, ReLU^2 MLP, untied head, logit soft-cap
# ---------------------------------------------------------------------------


@dataclass
class GPTConfig:
    vocab_size: int
    depth: int
    width: int
    n_head: int
    seq_len: int
    mlp_ratio: int
    softcap: float
    rope_base: float
    dropout: float


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    # Parameter-free: the following linear layer can absorb any per-channel gain.
    return F.rms_norm(x, (x.size(-1),))


def rotary_tables(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]  # (1, T, 1, D/2)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.head_dim = cfg.width // cfg.n_head
        self.dropout = cfg.dropout
        self.q = nn.Linear(cfg.width, cfg.width, bias=False)
        self.k = nn.Linear(cfg.width, cfg.width, bias=False)
        self.v = nn.Linear(cfg.width, cfg.width, bias=False)
        self.proj = nn.Linear(cfg.width, cfg.width, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        shape = (B, T, self.n_head, self.head_dim)
        # QK-norm keeps attention logits bounded whatever the learning rate does to the weights.
        v = self.v(x).view(shape)
        # The .to() keeps q, k in v's dtype when autocast ran the norm in float32.
        q = apply_rotary(rms_norm(self.q(x).view(shape)), cos, sin).to(v.dtype)
        k = apply_rotary(rms_norm(self.k(x).view(shape)), cos, sin).to(v.dtype)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            is_causal=True,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.width, cfg.mlp_ratio * cfg.width, bias=False)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.width, cfg.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(rms_norm(x), cos, sin))
        return x + self.drop(self.mlp(rms_norm(x)))


class GPT(nn.Module):
    cos: torch.Tensor  # rotary tables, registered as buffers (they follow .to(device))
    sin: torch.Tensor

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.width)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.head = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        cos, sin = rotary_tables(cfg.seq_len, cfg.width // cfg.n_head, cfg.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.embed.weight, std=1.0)
        # A near-zero head starts every run at the uniform loss ln(vocab).
        nn.init.normal_(self.head.weight, std=0.001)
        bound = (3.0 / self.cfg.width) ** 0.5
        for block in self.blocks:
            assert isinstance(block, Block)
            for lin in (block.attn.q, block.attn.k, block.attn.v, block.mlp.fc):
                nn.init.uniform_(lin.weight, -bound, bound)
            # Zero output projections: each block starts as the identity on the residual.
            nn.init.zeros_(block.attn.proj.weight)
            nn.init.zeros_(block.mlp.proj.weight)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        T = idx.size(1)
        cos, sin = self.cos[:, :T], self.sin[:, :T]
        x = rms_norm(self.embed(idx))
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.head(rms_norm(x)).float()
        if self.cfg.softcap > 0:
            logits = self.cfg.softcap * torch.tanh(logits / self.cfg.softcap)
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


cfg = GPTConfig(
    vocab_size=VOCAB_SIZE,
    depth=DEPTH,
    width=WIDTH,
    n_head=N_HEAD,
    seq_len=SEQ_LEN,
    mlp_ratio=MLP_RATIO,
    softcap=LOGIT_SOFTCAP,
    rope_base=ROPE_BASE,
    dropout=DROPOUT,
)
if WIDTH % N_HEAD or (WIDTH // N_HEAD) % 2:
    raise SystemExit(f"WIDTH={WIDTH} must split into N_HEAD={N_HEAD} heads of even size")
raw_model = GPT(cfg).to(device)
model = torch.compile(raw_model) if on_cuda and COMPILE else raw_model
num_params = sum(p.numel() for p in raw_model.parameters())

# ---------------------------------------------------------------------------
# Optimisers and schedules
# ---------------------------------------------------------------------------

matrices = [p for p in raw_model.blocks.parameters() if p.ndim == 2]
assert len(matrices) == sum(1 for _ in raw_model.blocks.parameters()), "non-matrix block param"
adamw = torch.optim.AdamW(
    [
        {"params": [raw_model.embed.weight], "lr": EMBED_LR},
        {"params": [raw_model.head.weight], "lr": HEAD_LR},
    ],
    betas=ADAM_BETAS,
    eps=1e-10,
    weight_decay=0.0,
    fused=on_cuda,
)


class CPUMuon(torch.optim.Muon):
    """torch.optim.Muon with the Newton-Schulz iteration in float32.

    PyTorch's Muon orthogonalises in bfloat16, which CPUs without native bf16 matmuls run
    ~50x slower than float32; the update rule is otherwise the same.
    """

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - same signature as the parent
        for group in self.param_groups:
            a, b, c = group["ns_coefficients"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - group["momentum"])
                g = p.grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf
                tall = g.size(0) > g.size(1)
                u = g.T if tall else g
                u = u / u.norm().clamp(min=group["eps"])
                for _ in range(group["ns_steps"]):
                    gram = u @ u.T
                    u = torch.addmm(u, torch.addmm(gram, gram, gram, beta=b, alpha=c), u, beta=a)
                u = u.T if tall else u
                scale = max(1.0, p.size(0) / p.size(1)) ** 0.5  # adjust_lr_fn="original"
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(u, alpha=-group["lr"] * scale)


muon = (torch.optim.Muon if on_cuda else CPUMuon)(
    matrices,
    lr=MATRIX_LR,
    momentum=MUON_MOMENTUM,
    nesterov=True,
    weight_decay=WEIGHT_DECAY,
    adjust_lr_fn="original",
)
optimizers = (adamw, muon)
for opt in optimizers:
    for group in opt.param_groups:
        group["initial_lr"] = group["lr"]


def lr_multiplier(progress: float) -> float:
    if WARMUP_RATIO > 0 and progress < WARMUP_RATIO:
        return (progress + 1e-8) / WARMUP_RATIO
    if WARMDOWN_RATIO > 0 and progress > 1.0 - WARMDOWN_RATIO:
        cooldown = (1.0 - progress) / WARMDOWN_RATIO
        return FINAL_LR_FRAC + (1.0 - FINAL_LR_FRAC) * cooldown
    return 1.0


# ---------------------------------------------------------------------------
# Training loop: stops when the timed training seconds reach the budget
# ---------------------------------------------------------------------------

loader = prepare.train_loader(data.train_tokens, BATCH_SIZE, SEQ_LEN, device, seed=SEED)
untimed_steps = prepare.UNTIMED_STEPS[device.type]
budget = prepare.TIME_BUDGET
tokens_per_step = BATCH_SIZE * GRAD_ACCUM * SEQ_LEN
print(
    f"device {device.type} ({torch.get_num_threads()} threads) | corpus {data.corpus.source} | "
    f"tokenizer {data.tokenizer.name} | {len(data.train_tokens) / 1e6:.2f}M train tokens | "
    f"{num_params / 1e6:.3f}M params | budget {budget:g} s",
    flush=True,
)

print(f"setup: {time.time() - T_START:.1f} s", flush=True)
training_time = 0.0
step = 0
smooth_loss = 0.0
next_report = 0.0
x, y = next(loader)
while True:
    if on_cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    progress = min(training_time / budget, 1.0)
    mult = lr_multiplier(progress)
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * mult
    for _ in range(GRAD_ACCUM):
        with autocast:
            loss = model(x, y)
        (loss / GRAD_ACCUM).backward()
        x, y = next(loader)  # prefetch while the optimiser runs
    for opt in optimizers:
        opt.step()
    raw_model.zero_grad(set_to_none=True)  # the compiled model shares these parameters
    loss_value = loss.item()  # also synchronises the device, so dt is the true step time
    if prepare.diverged(loss_value, VOCAB_SIZE):
        print(f"FAIL: training loss {loss_value} at step {step}: diverged", file=sys.stderr)
        sys.exit(1)
    dt = time.perf_counter() - t0
    if step >= untimed_steps:
        training_time += dt
    step += 1
    smooth_loss = 0.9 * smooth_loss + 0.1 * loss_value
    debiased = smooth_loss / (1 - 0.9**step)
    if training_time >= next_report or training_time >= budget:
        next_report += budget / 10
        print(
            f"step {step:05d} | {100 * progress:5.1f}% | loss {debiased:.4f} | "
            f"lr x{mult:.2f} | {1000 * dt:.0f} ms | {tokens_per_step / dt:,.0f} tok/s | "
            f"{training_time:.1f} s",
            flush=True,
        )
    if training_time >= budget:
        break

# ---------------------------------------------------------------------------
# Evaluation and summary
# ---------------------------------------------------------------------------

t_eval = time.perf_counter()
with autocast:
    val_bpb = prepare.evaluate_bpb(
        raw_model, data.val_tokens, data.token_bytes, SEQ_LEN, BATCH_SIZE, device
    )
total_tokens = step * tokens_per_step
print(f"eval: {len(data.val_tokens):,} tokens in {time.perf_counter() - t_eval:.1f} s", flush=True)
if on_cuda:
    peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20
    # Per token: 6 FLOPs per matrix weight (forward + backward), plus attention scores.
    flops_per_token = 6 * (num_params - raw_model.embed.weight.numel())
    flops_per_token += 12 * DEPTH * WIDTH * SEQ_LEN
    timed_tokens = max(step - untimed_steps, 0) * tokens_per_step
    mfu = 100 * timed_tokens * flops_per_token / max(training_time, 1e-9) / prepare.GPU_PEAK_FLOPS
else:
    peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

print("---")
print(f"val_bpb: {val_bpb:.6f}")
print(f"training_seconds: {training_time:.1f}")
print(f"total_seconds: {time.time() - T_START:.1f}")
print(f"peak_memory_mb: {peak_memory_mb:.1f}")
if on_cuda:
    print(f"mfu_percent: {mfu:.2f}")
print(f"total_tokens_M: {total_tokens / 1e6:.3f}")
print(f"num_steps: {step}")
print(f"num_params_M: {num_params / 1e6:.3f}")
print(f"device: {device.type}")
print(f"tokenizer: {data.tokenizer.name}")
