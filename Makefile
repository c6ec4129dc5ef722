# AscendNet. `make setup` installs what is missing; `make test` runs every suite; `make dev` runs
# the local marketplace. See README.md.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/.venv/bin:$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/.solcx

.PHONY: setup test dev contracts coverage slither lint typecheck clean-cache

setup:
	scripts/setup.sh

test:
	scripts/test.sh

dev: setup
	ascendnet dev

# Recompile with ape (solcjs, offline) and refresh chain/abi/*.json and chain/events.py.
contracts: setup
	python -m chain.build

coverage: setup
	forge coverage --report summary --no-match-coverage 'contracts/(test|src/mocks)/'

slither: setup
	scripts/slither.sh

lint: setup
	ruff check ascendnet chain tests

typecheck: setup
	mypy

clean-cache:
	rm -rf .forge .build .pytest_cache .mypy_cache .ruff_cache
