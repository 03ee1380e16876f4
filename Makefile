# `make run` executes copies of the notebook series (build/notebooks/) and renders site/index.html;
# `make test` runs ruff and the whole test suite. Both create .venv (with the [test,docs] extras) when it is
# missing. Neither changes a tracked file.
# `make notebooks` (maintainers) re-executes the committed notebooks in place, to commit fresh outputs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# OpenMP threads sleep instead of spinning while they wait: on a busy machine spinning threads made
# torch 7-14x slower (README, "Threads and busy machines"). Kernels and tests also cap torch's threads.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: run test test-busy quick notebooks render bench check-site check-models clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,docs]"
	touch $(STAMP)

## make run: execute copies of every notebook (full mode) into build/notebooks/ and render site/ from them
run: $(STAMP)
	$(PY) -m tools.tutorial run

## make quick: the same in quick mode (INTERP_QUICK=1); executed copies go to build/quick/
quick: $(STAMP)
	$(PY) -m tools.tutorial run --quick

## make notebooks: (maintainers) re-execute the committed notebooks in place (full mode), then render site/
notebooks: $(STAMP)
	$(PY) -m tools.tutorial refresh

## make render: render site/ from the committed notebooks without executing them
render: $(STAMP)
	$(PY) -m tools.tutorial render

## make test: ruff, then the whole suite, notebooks included (executed on copies in quick mode)
TEST_CMD := $(PY) -m pytest
test: $(STAMP)
	$(PY) -m ruff check interp_helpers tests tools benchmarks
	$(TEST_CMD)

## make test-busy: the suite while two CPU-bound processes compete for the CPU; prints the wall time
test-busy: $(STAMP)
	$(PY) -c "while True: pass" & a=$$!; $(PY) -c "while True: pass" & b=$$!; \
	trap 'kill $$a $$b 2>/dev/null' EXIT INT TERM; start=$$(date +%s); \
	$(TEST_CMD); rc=$$?; \
	echo "test suite with two competing CPU-bound processes: $$(( $$(date +%s) - start )) s (exit $$rc)"; exit $$rc

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
