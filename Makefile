# Two commands do all the set-up on a fresh machine:  `make up`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/aonet: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install up test bench emscripten
install: $(BIN)/aonet node_modules/.installed

emscripten:  ## Debian's emscripten, for the emscripten conformance tests (only when emcc is missing)
	@command -v emcc >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq emscripten; } \
		|| { echo "could not install Debian's emscripten (apt-get install emscripten)"; [ -z "$$CI" ] || exit 1; }

up: install  ## start the local devnet
	$(BIN)/aonet up

test: install emscripten  ## run the whole test suite
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install emscripten  ## every benchmark, one after the other (prints figures)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
