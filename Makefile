# One command each. Every target installs what it needs into .venv/ first.
PY := .venv/bin/python
SETUP := bash scripts/setup.sh

.PHONY: help setup run studio demo test test-fast test-graphs lint format typecheck bench

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup:  ## create/update .venv (CPU build of vLLM; `bash scripts/setup.sh gpu` for GPUs)
	@$(SETUP)

run: setup  ## the main job: the smoke config end to end on the embedded defaults
	$(PY) -m acdc.cli run --config configs/smoke.yaml --run-id smoke-$$(date +%Y%m%d-%H%M%S)

studio: setup  ## serve the graphs for LangGraph Studio (PORT=2025 by default)
	.venv/bin/langgraph dev --port $${PORT:-2025} --no-browser

demo: setup  ## seed, serve, breed two children, let each answer
	$(PY) -m acdc.cli demo

test: test-fast  ## every test: the fast tier alone (its guard needs that), the graph runs, then vLLM
	$(PY) -m pytest -q -n auto --dist loadfile tests/graph_tests
	$(PY) -m pytest -q tests/integration_tests

test-fast: setup  ## pure unit tests over every core, under a minute on 2: no vLLM, no server, no graph run
	$(PY) -m pytest -q -n auto tests/unit_tests

test-graphs: setup  ## graph runs on scripted roles, seed conversion, training (minutes; a file per worker)
	$(PY) -m pytest -q -n auto --dist loadfile tests/graph_tests

lint: typecheck  ## ruff and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: setup  ## strict mypy on the installed package layout
	bash scripts/typecheck.sh

format: setup  ## apply ruff's formatting and safe fixes
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: setup  ## population serving benchmark (minutes; prints figures and ratios)
	$(PY) bench/population_serving.py
