# Two entry points: `make demo` and `make test`. Both build .venv on their own.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo docs-images test lint bench fuzz clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m sim run examples/scenarios/demo.yaml --out results/demo

# the demo's plots, as the README shows them
docs-images: demo
	mkdir -p docs/img
	cp results/demo/*.png docs/img/

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m mypy --strict scheduler/core

test: $(STAMP) lint
	$(PY) -m pytest --cov=scheduler --cov=sim --cov-report=term --cov-fail-under=85 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench_decisions.py
	$(PY) benchmarks/bench_sim.py
	$(PY) benchmarks/bench_live.py
	$(PY) benchmarks/bench_sweep.py

# schemathesis against a real scheduler on loopback; registrations only reach its own instances
fuzz: $(STAMP)
	$(PY) tools/fuzz_live.py $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) results .pytest_cache .coverage
