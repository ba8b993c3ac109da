# vidrec: `make demo` and `make test` work from a fresh clone on a machine with only Python.
# Each creates .venv if missing, installs what is needed (system packages too), then runs.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages installed by `sysdeps` when missing: chromium (the browser test),
# default-jre-headless (the METEOR caption score), python3-venv (a Debian python3 without ensurepip),
# ffmpeg (its shared libraries are what TorchCodec decodes with; tests make videos with its CLI),
# opencv-doc (real sample videos, vtest.avi and others, for the real-footage benchmark and tests).

.PHONY: demo test test-fast bench serve install sysdeps clean

install: sysdeps $(STAMP)

$(STAMP): pyproject.toml
	@# A venv made without ensurepip has no pip: make it again rather than fail forever.
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[demo,export,test,bench]"
	@touch $(STAMP)

sysdeps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v java >/dev/null 2>&1 || missing="$$missing default-jre-headless"; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	[ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || missing="$$missing opencv-doc"; \
	$(PYTHON) -c "import ensurepip" >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null 2>&1; then \
			echo "error: these Debian packages are needed and installing them needs root:$$missing" >&2; exit 1; \
		fi; \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: install
	$(PY) -m vidrec.apps.order_demo

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
