"""The crash landscape's editable file: the landscape's seven knobs, started near the
region where real runs of train.py diverged (HEAD_LR 0.2, no logit soft-cap). See
task.toml for how the box was chosen."""

MATRIX_LR = 0.04  # Muon learning rate of the block matrices
EMBED_LR = 0.2  # AdamW learning rate of the token embedding
HEAD_LR = 0.2  # AdamW learning rate of the output head (box 0.05-0.8: divergences inside)
DEPTH_CPU = 3  # transformer blocks (real runs covered 1..6)
WIDTH_CPU = "128"  # model dimension; choices: 64 | 96 | 128 | 192 | 256
WARMDOWN_RATIO = 0.4  # fraction of the budget with linearly decaying LR
LOGIT_SOFTCAP = "0"  # logit soft-cap, 0 disables; choices: 0 | 5 | 15 | 30
