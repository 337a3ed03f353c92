# Two commands do all set-up on a fresh machine:
#   make run   - create .venv, install, ingest the bundled demo feed, serve the site
#   make test  - create .venv with test extras, install system packages the tests use, run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# the commands' own default archive, so README's examples work after `make run`
DEMO_DB ?= podarchive.db
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install install-test system-deps demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The constraints file pins torch to the CPU wheel this machine holds (see README: other machines).
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# ffmpeg (audio tools in tests and benchmarks), Debian's chromium for the real-browser tests, and redis-server for
# the distributed-transcription tests (they start their own on a free loopback port).
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1 || \
			! command -v redis-server >/dev/null 2>&1; then \
		if [ "$$(id -u)" = "0" ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg chromium redis-server \
				>/dev/null; \
		else \
			echo "note: install ffmpeg, chromium and redis-server (apt-get install ffmpeg chromium redis-server)" \
				"for the browser and distributed tests"; \
		fi; \
	fi

demo: install
	$(BIN)/podarchive ingest --db $(DEMO_DB) --media-dir demo-media demo/feed.xml
	@echo "The demo show is in $(DEMO_DB), the archive every command uses by default: try" \
		"\`.venv/bin/podarchive search \"testing data pipelines\"\`"

run: demo
	$(BIN)/podarchive serve --db $(DEMO_DB) --host $(HOST) --port $(PORT)

# pytest exits 5 when it collects nothing: not a failure of the build.
test: install-test system-deps
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then exit 0; fi; exit $$rc

bench: install-test system-deps
	$(BIN)/python bench/transcription.py
	$(BIN)/python bench/ingest_twiml.py
	$(BIN)/python bench/distributed.py

clean:
	rm -rf $(VENV) build *.egg-info  # never the archive: it may hold more than the demo
