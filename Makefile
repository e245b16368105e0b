# Common tasks. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# the lowest versions pyproject.toml allows (uv's lowest-direct resolution), to prove its floors
FLOORS := .venv-floors

FUZZ_MINUTES ?= 30
FUZZ_SUMMARY ?= fuzz-summary.json
# make test draws the same paths every run (this seed); make fuzz explores random ones
CI_FUZZ_SEED ?= 3105763003

.PHONY: demo test test-floors test-live fuzz tmux record bench lint format typecheck stack-up stack-down stack-status clean

# uv installs in seconds from its cache (and the Letta server venv too, see scripts/letta_stack.py);
# plain pip is the fallback. Always into a new venv: one an interrupted install left holds
# packages that look installed (their metadata is there) but lack files.
$(INSTALLED): pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	($(PY) -m pip install --quiet uv && $(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev,examples]') \
	  || ($(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet -e '.[dev,examples]')
	touch $@

$(FLOORS)/.installed: pyproject.toml $(INSTALLED)
	rm -rf $(FLOORS)
	$(VENV)/bin/uv venv --quiet --python $(PY) $(FLOORS)
	$(VENV)/bin/uv pip install --quiet --python $(FLOORS)/bin/python --resolution lowest-direct -e '.[dev]'
	touch $@

demo: $(INSTALLED)  ## the main job: two users' sessions on one agent
	$(PY) examples/demo.py

# The offline tier runs with no network at all where the kernel lets us make an empty network
# namespace (unshare), which proves it needs none; the live tier then runs on the local stack.
OFFLINE := $(shell unshare -rn true 2>/dev/null && echo unshare -rn --)

test: $(INSTALLED) tmux  ## the whole suite: unit and cassette replays offline, then live tests on the local stack
	$(PY) -c "from tests.test_user_project import vcrpy9_site; vcrpy9_site()"  # needs the registry
	$(OFFLINE) $(PY) -m pytest -m "not live"
	$(MAKE) --no-print-directory test-floors
	FUZZ_SEED=$${FUZZ_SEED:-$(CI_FUZZ_SEED)} $(PY) -m pytest -m live --durations=12

test-floors: $(FLOORS)/.installed  ## unit and replay tiers on the lowest allowed dependency versions, offline
	$(FLOORS)/bin/python -c "from importlib.metadata import version as v; print('floors:', *(f'{p} {v(p)}' for p in ('langchain-core', 'letta-client', 'pydantic', 'langchain', 'langgraph', 'vcrpy')))"
	$(OFFLINE) $(FLOORS)/bin/python -m pytest -m "not live" -p no:cacheprovider tests/unit_tests tests/integration_tests

test-live: $(INSTALLED) tmux  ## integration tests live against the server (no cassettes)
	LETTA_TEST_MODE=live $(PY) -m pytest tests/integration_tests

fuzz: $(INSTALLED)  ## a longer soak of the stateful test: FUZZ_MINUTES=30, summary in FUZZ_SUMMARY
	FUZZ_MINUTES=$(FUZZ_MINUTES) FUZZ_SUMMARY=$(FUZZ_SUMMARY) $(PY) -m pytest tests/stateful/test_user_paths.py

record: $(INSTALLED) tmux  ## re-record cassettes from the real server
	LETTA_TEST_MODE=record $(PY) -m pytest tests/integration_tests
	$(PY) -m pytest examples/test_recorded_chain.py --record-mode=rewrite
	cd examples/user_project && export LETTA_BASE_URL=$${LETTA_BASE_URL:-http://127.0.0.1:8283} && \
		../../$(PY) make_agent.py && set -a && . ./recorded_with.env && set +a && \
		../../$(PY) -m pytest -p no:cacheprovider --record-mode=rewrite

bench: $(INSTALLED)  ## benchmarks live against the local stack (BENCH_ARGS=--quick for a short run)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

tmux:  ## the terminal the example CLI's test drives
	command -v tmux >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux)

lint: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(INSTALLED)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

typecheck: $(INSTALLED)
	$(PY) -m mypy

stack-up:
	$(PYTHON) scripts/letta_stack.py up

stack-down:
	$(PYTHON) scripts/letta_stack.py down

stack-status:
	$(PYTHON) scripts/letta_stack.py status

clean:
	rm -rf $(VENV) $(FLOORS) .pytest_cache .mypy_cache .ruff_cache
