# The README's two commands: `make train` (main job) and `make test`.
# Both create .venv on first use and install the project into it (editable, dev extras).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hpenv-installed

.PHONY: install test test-slow train lint typecheck benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

test: install
	$(PY) -m pytest

# The tests marked slow (Ray clusters, Ray Tune): CI runs them after `make test`.
test-slow: install
	$(PY) -m pytest -m slow

# The main job: five meta-training seeds of 4,800 agent steps each (about the steps of three
# default runs) and their ensemble (logs/meta-ppo-s0x5-<time>/policy.pt),
# deployed with the rise guard (hpenv.hyperparams.RiseGuard), the restart, its rollback and the
# rollback of a collapse (hpenv.restart) and the fall hold (hpenv.hyperparams.FallHold).
train: install
	$(PY) scripts/train_agent.py --ensemble 5 --total-steps 4800 --deploy-rise-guard on \
		--deploy-restart collapse --deploy-fall-hold on

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install
	$(PY) -m mypy

benchmark: install
	$(PY) scripts/benchmark_training.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
