# Two commands: `make run` executes the notebook series and renders site/index.html;
# `make test` runs the whole test suite. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test quick render bench check-site check-models clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## make run: execute every notebook top to bottom (full mode) and render site/index.html
run: $(STAMP)
	$(PY) -m interp_helpers.tutorial run

## make quick: the same in quick mode (INTERP_QUICK=1); executed copies go to build/quick/
quick: $(STAMP)
	$(PY) -m interp_helpers.tutorial run --quick

## make render: render site/ from the committed notebooks without executing them
render: $(STAMP)
	$(PY) -m interp_helpers.tutorial render

## make test: the whole suite, notebooks included (executed on copies in quick mode)
test: $(STAMP)
	$(PY) -m pytest

## make bench: the benchmarks in benchmarks/ (results in benchmarks/results/)
bench: $(STAMP)
	$(PY) benchmarks/bench_smoothgrad.py
	$(PY) benchmarks/bench_expected_gradients.py

## make check-site: install Debian's chromium if missing (needs root), then check site/ in a headless browser
check-site: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m pytest tests/test_site_browser.py -rs

## make check-models: notebooks 01, 02, 03, 05 in quick mode on ResNet50 and DenseNet121 (random-weight
## stand-ins in torchvision's published formats, in a temporary TORCH_HOME), with wall time and peak memory
check-models: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) tools/check_models.py

clean:
	rm -rf site build .pytest_cache
