# ngxws: every target sets itself up (venv, packages, Debian's nginx where needed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv test lint run bench bench-table nginx promtool chromium clean

venv: $(STAMP)

$(STAMP): setup.cfg setup.py pyproject.toml $(wildcard ngxws/ws/*.c)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(STAMP)

nginx:
	@sh scripts/install-nginx.sh

promtool:
	@sh scripts/install-promtool.sh

chromium:
	@sh scripts/install-chromium.sh

lint: $(STAMP)
	$(BIN)/ruff check ngxws tests bench
	$(BIN)/mypy

test: $(STAMP) nginx promtool chromium lint
	$(BIN)/python -m pytest -q

run: $(STAMP)
	$(BIN)/python conf_examples/demo.py

bench: $(STAMP) nginx
	$(BIN)/python -m bench
	$(BIN)/python -m bench.readme

# README's benchmark table, from bench/results/latest.json (never typed by hand)
bench-table: $(STAMP)
	$(BIN)/python -m bench.readme

clean:
	rm -rf $(VENV) build *.egg-info ngxws/ws/*.so
