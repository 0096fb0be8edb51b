# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
# Both create (or reuse) .venv and install the pinned dependencies first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Tests and demos never wait on the network for MNIST.
export CNN_COURSE_OFFLINE ?= 1

.PHONY: demo test release lint bench-conv bench-grading reproduce clean-venv

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

## demo: autograde the sample submissions and print the grade table
demo: $(STAMP)
	$(BIN)/python -m autograder demo

## test: the whole test suite (what CI runs)
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

## release: regenerate assignments/ from solutions/ with nbgrader
release: $(STAMP)
	$(BIN)/python -m autograder release

lint: $(STAMP)
	$(BIN)/ruff check cnncourse autograder tests benchmarks
	$(BIN)/ruff format --check cnncourse autograder tests benchmarks

## bench-conv: numpy loops vs vectorised numpy vs torch (assignment 2)
bench-conv: $(STAMP)
	$(BIN)/python benchmarks/bench_conv.py

## bench-grading: plain nbgrader vs ours (serial, parallel, dask)
bench-grading: $(STAMP)
	$(BIN)/python benchmarks/bench_grading.py

## reproduce: full-length training runs of the lecture CNNs
reproduce: $(STAMP)
	CNN_COURSE_OFFLINE=0 $(BIN)/python benchmarks/reproduce_training.py

clean-venv:
	rm -rf $(VENV)
