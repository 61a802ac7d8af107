"""The landscape's editable file: seven knobs of the built-in trainer's train.py.

Agents edit the values; ``evaluate.py`` scores them with a surrogate fitted to real 3 s CPU
runs of train.py (see docs/benchmarks.md). Names and meanings are train.py's; the two knobs
the real runs sampled from a set are strings listing that set (the builtin proposer then
picks among exactly those values), and the start is train.py's CPU configuration except
DEPTH_CPU (3, so the proposer's integer range is the sampled 1..6) and HEAD_LR.
"""

MATRIX_LR = 0.04  # Muon learning rate of the block matrices
EMBED_LR = 0.2  # AdamW learning rate of the token embedding
HEAD_LR = 0.03  # AdamW learning rate of the output head (train.py: 0.01, tuned for 60 s)
DEPTH_CPU = 3  # transformer blocks (real runs covered 1..6)
WIDTH_CPU = "128"  # model dimension; choices: 64 | 96 | 128 | 192 | 256
WARMDOWN_RATIO = 0.4  # fraction of the budget with linearly decaying LR
LOGIT_SOFTCAP = "15"  # logit soft-cap, 0 disables; choices: 0 | 5 | 15 | 30
