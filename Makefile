# Two commands: `make demo` and `make test`. Both create .venv on first use and install everything.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# On a machine without an NVIDIA driver take the CPU build of torch (it lies on disk here; an
# unpinned `torch` would pull a multi-GB CUDA build). With a GPU, take PyPI's default (CUDA) build.
TORCH  ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo "torch>=2.2" || echo "torch==2.13.0")
DEMO_DIR ?= demo-run

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,export]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/twostream demo $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/flow_accuracy.py
	$(PY) benchmarks/extract.py
	$(PY) benchmarks/loader.py
	$(PY) benchmarks/model.py
	$(PY) benchmarks/predict.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
