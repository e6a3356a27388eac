# The two commands: `make run` (the main job on embedded defaults) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
VAR ?= var
SAMPLE_WIKI ?= enwiki
# Evaluated only where used (recursive "="), so `make test` never fetches the sample.
SAMPLE_DUMP = $(shell scripts/sample_dump.sh $(VAR))

.PHONY: run test lint venv services services-stop bench clean chromium

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

$(VAR)/models/$(SAMPLE_WIKI)/manifest.json: | venv
	$(PY) -m model train --wiki $(SAMPLE_WIKI) --dump $(SAMPLE_DUMP) --out $(VAR)/models/$(SAMPLE_WIKI)

run: venv $(VAR)/models/$(SAMPLE_WIKI)/manifest.json
	ADDLINK_SAMPLE_DUMP=$(SAMPLE_DUMP) $(PY) -m runner --config runner/sample-config.yaml --log-format text migrate
	ADDLINK_SAMPLE_DUMP=$(SAMPLE_DUMP) $(PY) -m runner --config runner/sample-config.yaml --log-format text refresh
	ADDLINK_SAMPLE_DUMP=$(SAMPLE_DUMP) $(PY) -m runner --config runner/sample-config.yaml status

lint: venv
	$(VENV)/bin/ruff check .

services: venv
	scripts/services.sh start

services-stop:
	scripts/services.sh stop

chromium:
	scripts/install_chromium.sh

test: venv services chromium
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: venv
	$(PY) benchmarks/recommend_bench.py

clean:
	rm -rf $(VAR) .pytest_cache
