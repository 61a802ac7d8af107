"""The flat landscape's editable file: the landscape's seven knobs and start values.

Here they change nothing: ``evaluate.py`` prints a constant plus run noise whatever they
are (landscape.toml), so any kept change is a false keep.
"""

MATRIX_LR = 0.04  # Muon learning rate of the block matrices
EMBED_LR = 0.2  # AdamW learning rate of the token embedding
HEAD_LR = 0.03  # AdamW learning rate of the output head
DEPTH_CPU = 3  # transformer blocks
WIDTH_CPU = "128"  # model dimension; choices: 64 | 96 | 128 | 192 | 256
WARMDOWN_RATIO = 0.4  # fraction of the budget with linearly decaying LR
LOGIT_SOFTCAP = "15"  # logit soft-cap, 0 disables; choices: 0 | 5 | 15 | 30
