# AscendNet. `make setup` installs what is missing; `make test` runs every suite; `make dev` runs
# the local marketplace. See README.md.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/.venv/bin:$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/.solcx

.PHONY: setup test dev demo status redeploy contracts coverage slither lint typecheck clean-cache clean-dev

setup:
	scripts/setup.sh

test:
	scripts/test.sh

dev: setup
	ascendnet dev

# Against a running `make dev`, from another terminal.
demo:
	ascendnet demo

status:
	ascendnet status

# Fresh contracts on the kept dev chain; the read models and agent journals of the old ones go.
redeploy: setup
	ascendnet dev --redeploy

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

# Build and tool caches (recreated on the next build or test run).
clean-cache:
	rm -rf .forge .build contracts/.build contracts/src/.cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./.venv -prune -o -path ./node_modules -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

# The dev stack's chain, read models, journals and keys: the next `make dev` starts over.
clean-dev:
	rm -rf .data/dev
