# gpudesk: every set-up step lives here, so a clean clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CONFIG ?= $(if $(wildcard config.toml),config.toml,config.example.toml)

.PHONY: install run test lint bench soak clean

install: $(STAMP)  ## .venv with gpudesk and its dev tools (a no-op when up to date)

# setup.py compiles the offer parser (and the modules it reads types from) with mypyc: installing
# again after they change rebuilds it. Without a C compiler the parser is installed as plain Python.
$(STAMP): pyproject.toml setup.py $(addprefix gpudesk/market/,parse.py catalog.py places.py offer.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' || { \
	  echo "warning: could not compile the parser; installing it as plain Python (slower)"; \
	  GPUDESK_PURE_PYTHON=1 $(BIN)/python -m pip install --quiet -e '.[dev]'; }
	@# Digest charts need a CJK font for Chinese labels, and no PyPI package ships one.
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei) \
	      || echo "warning: could not install fonts-wqy-microhei; Chinese chart labels will be boxes"; \
	  else \
	    echo "note: no CJK font; for Chinese chart labels run: sudo apt-get install fonts-wqy-microhei"; \
	  fi; }
	touch $(STAMP)

run: install  ## start the bot; with no chat credentials, the console chat
	$(BIN)/gpudesk --config $(CONFIG) run

lint: install
	$(BIN)/ruff check gpudesk tests bench
	$(BIN)/ruff format --check gpudesk tests bench

test: lint  ## ruff, then the whole test suite
	$(BIN)/python -m pytest -q

bench: install  ## the benchmarks (slow; not part of make test)
	$(BIN)/python bench/run_all.py

soak: install  ## the long crash run: 10,000 updates, 24 SIGKILLs (slow; not in make test)
	$(BIN)/python bench/soak_crash.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis build *.egg-info
	rm -f gpudesk/market/*.so
