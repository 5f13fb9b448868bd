# The README's two commands: `make explore` and `make test`. Each sets up .venv when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed

.PHONY: explore test test-slow demo-data bench clean

$(RUNTIME_STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# Set up, make the demo sound set if missing (its difficulty card is left to `make demo-data`: no page reads it),
# and open the explorer on localhost (make explore PORT=8502); the server imports and loads the default models as it
# starts, and computes what the pages read on their first visit in the background (python -m core warm-cache,
# once): see explorer/serve.py.
explore: $(RUNTIME_STAMP)
	$(PY) -m core make-demo-data --no-card
	$(PY) -m streamlit run explorer/serve.py --server.port $(PORT)

# Set up (chromium for the browser test, when we may install it) and run the whole suite.
test: $(DEV_STAMP)
	bash scripts/ensure-chromium.sh
	$(PY) -m core make-demo-data
	$(PY) -m pytest -q -n 2 -m "not slow" tests
	$(PY) -m pytest -q -p no:xdist -m slow tests
	$(PY) -m pytest -q -p no:xdist --doctest-modules core

# Only the slow tests: every page in a browser with a real-size (86.6 M parameter) AST; a few minutes on 2 cores.
test-slow: $(DEV_STAMP)
	bash scripts/ensure-chromium.sh
	$(PY) -m core make-demo-data
	$(PY) -m pytest -q -s -p no:xdist -m slow tests

demo-data: $(RUNTIME_STAMP)
	$(PY) -m core make-demo-data

bench: $(RUNTIME_STAMP)
	$(PY) -m core bench

clean:
	rm -rf $(VENV) .cache .pytest_cache .hypothesis
