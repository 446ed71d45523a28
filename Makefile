# The two commands a fresh clone needs (see README): `make demo` and `make test`.
# Both install into a local virtualenv first. torch is the CPU wheel from the local disk; every other
# package builds against it (--no-build-isolation) so pip never pulls a CUDA torch.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_OUT ?= demo_out

.PHONY: install demo test

install: $(VENV)/.installed

$(VENV)/.installed: setup.py requirements-cpu.txt requirements-da.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-build-isolation -r requirements-cpu.txt
	$(BIN)/pip install -q --no-deps torch-harmonics
	$(BIN)/pip install -q --no-deps -r requirements-da.txt
	# DAPPER 1.7.1 installs its own test suite as a top-level `tests` package, which would shadow this repo's.
	rm -rf $(VENV)/lib/python*/site-packages/tests
	$(BIN)/pip install -q --no-build-isolation --no-deps -e .
	touch $@

demo: install
	$(BIN)/megageo demo --out $(DEMO_OUT)

# The venv's bin first on PATH: the launcher tests start torchrun, deepspeed and mpirun by name.
test: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q
