# vidrec: `make demo` and `make test` work from a fresh clone on a machine with only Python.
# Each creates .venv if missing, installs what is needed (system packages too), then runs.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: Chromium for the browser test, a JRE for the METEOR caption score.
APT_PACKAGES := chromium default-jre-headless

.PHONY: demo test test-fast bench serve install sysdeps clean

install: $(STAMP) sysdeps

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[demo,export,test]"
	@touch $(STAMP)

sysdeps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: install
	$(PY) -m vidrec.pipeline_demo

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) -m benchmarks.run_all

serve: install
	$(PY) infer.py --demo --ckpt runs/demo/lstm.ckpt

clean:
	rm -rf runs data/synthetic .cache
