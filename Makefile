# Two entry points for a fresh machine: `make run` and `make test`.
# Both create .venv and install the core and every plugin under plugins/ in
# editable mode, with torch pinned in the same pip command so pip takes the
# CPU wheel rather than pulling a CUDA build.
VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
CONFIG    ?= configs/vectorfair.toml
PLUGIN_DIRS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
# Third-party plugin examples, installed from their own directories like any plugin.
EXAMPLE_DIRS := $(sort $(dir $(wildcard examples/*/pyproject.toml)))
TORCH     := torch==2.13.0
STAMP     := $(VENV)/.installed
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup run test test-server test-lite3 test-fast lint bench clean chromium redis lite3

setup: $(STAMP)

# The browser tests drive Debian's Chromium (Playwright never downloads one).
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# The scale-out tests (tests/test_scale_out.py) start Debian's redis-server,
# each on a port of its own with persistence off; `make run` needs no Redis.
redis:
	@command -v redis-server >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; }

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml) $(wildcard examples/*/pyproject.toml) $(wildcard plugins/*/requirements-nodeps.txt) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH) -e '.[test,towhee,s3,queue]' $(foreach p,$(PLUGIN_DIRS) $(EXAMPLE_DIRS),-e $(p))
	# Packages that pin ancient dependencies go in without them (see each file).
	for f in $(wildcard plugins/*/requirements-nodeps.txt); do $(BIN)/python -m pip install -q --no-deps -r $$f || exit 1; done
	touch $(STAMP)

# The portable fallback engine, milvus-lite 3 (pure Python; what a platform
# without a 2.5 wheel, such as Windows, installs), in a folder of its own: the
# runs that test it put it first on PYTHONPATH, ahead of the default 2.5.
LITE3 := $(VENV)/lite3
$(LITE3)/.installed: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps --upgrade --target $(LITE3) 'milvus-lite==3.2.2' 'faiss-cpu>=1.7.4' 'pyarrow>=15'
	touch $@
lite3: $(LITE3)/.installed

run: setup
	$(BIN)/vectorfair serve --config $(CONFIG)

# The suites that touch Milvus run again on Milvus Lite 3 and on a real
# Milvus server (PyPI's `milvus` 2.3.5, started by the tests; see conftest.py).
SERVER_SUITES ?= tests/test_store.py tests/test_api.py tests/test_conformance.py tests/test_portal.py \
	tests/test_hostile_uploads.py tests/test_resilience.py tests/test_server_mode.py tests/test_scale_out.py tests/test_server_backend.py \
	tests/test_vector_shapes.py tests/test_engines.py plugins examples
# On Lite 3 the same but the scale-out tier (a server's affair: Lite serves
# one process) and the server-only checks.
LITE3_SUITES ?= $(filter-out tests/test_scale_out.py tests/test_server_backend.py,$(SERVER_SUITES))

# ruff: lint (pyflakes, pycodestyle, import order, bugbear) and formatting.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup chromium redis lint lite3
	$(BIN)/python -m pytest --durations=25
	PYTHONPATH=$(LITE3) $(BIN)/python -m pytest --durations=15 $(LITE3_SUITES)
	$(BIN)/python -m pytest --milvus=server --durations=15 $(SERVER_SUITES)

test-lite3: setup redis lite3
	PYTHONPATH=$(LITE3) $(BIN)/python -m pytest $(LITE3_SUITES)

test-server: setup redis
	$(BIN)/python -m pytest --milvus=server $(SERVER_SUITES)

test-fast: setup redis
	$(BIN)/python -m pytest -m "not slow"

# Each script prints JSON, then a markdown table (docs/performance.md).
BENCHES ?= encoders search_http ingest store startup portal web_layer
bench: setup
	cd bench && for b in $(BENCHES); do ../$(BIN)/python $$b.py || exit 1; done

clean:
	rm -rf $(VENV) data .pytest_cache
