# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
# Both create (or reuse) .venv and install the pinned dependencies first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test release gradebook lint bench-conv bench-grading bench-bounds bench-checks reproduce reproduce-numpy-cnn clean-venv

# torch is installed alone and first: PyTorch's CPU-only build (no CUDA, cuDNN, NCCL or Triton),
# from a local copy of that exact wheel when pip has one (its find-links: no network, no wait),
# else from PyTorch's CPU wheel index. Everything else, torch's own dependencies included,
# comes from PyPI with the pins of constraints.txt.
TORCH_PIN   := $(shell grep -m1 -E '^torch==' requirements.txt)
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/python -m pip install --quiet --no-deps --no-index "$(TORCH_PIN)" 2>/dev/null; \
	then echo "$(TORCH_PIN): from a local wheel (or already installed)"; \
	else echo "$(TORCH_PIN): from $(TORCH_INDEX)"; \
	    $(BIN)/python -m pip install --quiet --no-deps --index-url $(TORCH_INDEX) "$(TORCH_PIN)"; fi
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

## help: list these targets, one line each
help:
	@sed -n -E 's/^## ([A-Za-z0-9_.-]+): (.*)$$/\1|\2/p' $(firstword $(MAKEFILE_LIST)) \
	    | awk -F'|' '{ printf "  make %-19s %s\n", $$1, $$2 }'

## install: create .venv with the pinned dependencies (the targets below do it when needed)
install: $(STAMP)

## demo: autograde the sample submissions and print the grade table
demo: $(STAMP)
	$(BIN)/python -m autograder demo

## test: the whole test suite (what CI runs)
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope

## release: regenerate assignments/ from solutions/ with nbgrader
release: $(STAMP)
	$(BIN)/python -m autograder release

## gradebook: gradebook.db with every assignment, for plain nbgrader and the Formgrader
gradebook: $(STAMP)
	$(BIN)/python -m autograder gradebook

## lint: ruff check, ruff format --check, and the mypy type checker on the libraries
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

LINT_PATHS := cnncourse autograder tests benchmarks classroom deploy book

## bench-conv: numpy loops vs vectorised numpy vs torch (assignment 2)
bench-conv: $(STAMP)
	$(BIN)/python benchmarks/bench_conv.py

## bench-grading: plain nbgrader vs ours (serial, parallel, dask)
bench-grading: $(STAMP)
	$(BIN)/python benchmarks/bench_grading.py

## bench-bounds: the grader's own memory under attack, and a neighbour's CPU next to a hog
bench-bounds: $(STAMP)
	$(BIN)/python benchmarks/bench_grader_bounds.py

## bench-checks: seconds of each visible test cell of the released assignments (goal < 5 s)
bench-checks: $(STAMP)
	$(BIN)/python benchmarks/visible_check_times.py

## reproduce-numpy-cnn: the capstone's numpy CNN in full mode (docs/numpy_cnn.json, a figure)
reproduce-numpy-cnn: $(STAMP)
	$(BIN)/python benchmarks/reproduce_numpy_cnn.py --threads 2

## reproduce: full-length training of the lecture CNNs on seeds 1,2,3, full MNIST, offline
reproduce: $(STAMP)
	$(BIN)/python benchmarks/reproduce_training.py

# --- modern CNNs (lecture 10, assignment 6) ---
.PHONY: reproduce-modern
## reproduce-modern: lecture 10's architectures on cluttered MNIST, seeds 1-3 (docs/modern.json)
reproduce-modern: $(STAMP)
	$(BIN)/python benchmarks/reproduce_modern.py
# --- end modern CNNs ---

# --- the course as a book (book/; README "The course as a book") ---
.PHONY: book book-fast

## book: the course as a static HTML site, lectures run in full mode (book/_build/html)
book: $(STAMP)
	$(BIN)/python -m book.build

## book-fast: the same site with lectures in fast mode, as CI checks it (book/_build/html-fast)
book-fast: $(STAMP)
	$(BIN)/python -m book.build --fast
# --- end book ---

## clean-venv: delete .venv
clean-venv:
	rm -rf $(VENV)

# --- classroom (JupyterHub for a class; README "Running the course for a class") ---
# As root. Settings: make classroom CLASSROOM_PORT=8080 CLASSROOM_PREFIX=/srv/other
CLASSROOM_PORT   ?= 8000
CLASSROOM_PREFIX ?= /srv/cnn-course
CLASSROOM_ROSTER ?= classroom/roster.csv
.PHONY: classroom classroom-clean

## classroom: JupyterHub with the demo class (as root); prints the URL and the accounts
classroom: $(STAMP)
	$(BIN)/python -m classroom up --prefix $(CLASSROOM_PREFIX) --port $(CLASSROOM_PORT) \
	    --roster $(CLASSROOM_ROSTER)

## classroom-clean: stop the classroom hub, remove its accounts and its folder
classroom-clean: $(STAMP)
	$(BIN)/python -m classroom down --prefix $(CLASSROOM_PREFIX)
# --- end classroom ---
