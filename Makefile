# Each target builds its own environment from nothing: .venv, torch (CPU build, pinned), the
# project in editable mode, then every first-party plugin distribution under plugins/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PLUGINS := $(wildcard plugins/fusekit-*)
STAMP := $(VENV)/.fusekit-installed
PYTEST_WORKERS ?= 2

.PHONY: run test test-seeds lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Editable installs are plain .pth files (package-dir in each pyproject.toml), which put each
# project folder on sys.path: *.egg-info left there by an earlier install (say, of the distribution
# before it was renamed fusekit-learn) would count as installed, so they are removed first, and so
# is a distribution named fusekit (that old install, or PyPI's unrelated package of that name).
$(STAMP): $(BIN)/python pyproject.toml constraints.txt $(wildcard plugins/*/pyproject.toml)
	rm -rf *.egg-info plugins/*/*.egg-info
	$(PIP) uninstall --quiet --quiet --yes fusekit
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[dev,bench,streaming]"
	@for plugin in $(PLUGINS); do \
		echo "installing plugin $$plugin"; \
		$(PIP) install --quiet -c constraints.txt -e "$$plugin" || exit 1; \
	done
	touch $(STAMP)

# The quick default suite (UCI Multiple Features and BasicMotions, every distinct fusion and
# weighting, reference rows, noise sweep) on every core, through the one command line.
run: $(STAMP)
	$(BIN)/fusekit bench --n-jobs -1 --out bench-out

test: $(STAMP)
	$(BIN)/python -m ruff check fusekit plugins tests benchmarks examples docs
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

# Tests that train a model and threshold a score (marked 'seeded') again under five other seeds.
TEST_SEEDS ?= 1 2 3 4 5
test-seeds: $(STAMP)
	@for seed in $(TEST_SEEDS); do \
		echo "== FUSEKIT_TEST_SEED=$$seed"; \
		FUSEKIT_TEST_SEED=$$seed $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile \
			-m seeded -p no:cacheprovider || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/python -m ruff check fusekit plugins tests benchmarks examples docs
	$(BIN)/python -m ruff format --check fusekit plugins tests benchmarks examples docs
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) build *.egg-info plugins/*/*.egg-info plugins/*/build
