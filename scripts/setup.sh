#!/usr/bin/env bash
# Installs whatever is missing for AscendNet on this machine, and nothing that is already there:
#   - on Debian as root: the system packages (docker.io, PostgreSQL, busybox-static, ...);
#   - the Python virtual environment (.venv) from the pinned constraints.txt;
#   - the npm toolchain (anvil, forge, solcjs, OpenZeppelin) from package-lock.json;
#   - the solcjs shim where ape-solidity looks for solc (.solcx/solc-v0.8.28).
# Safe to run again: each step is skipped when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
SOLC_VERSION=0.8.28

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- system packages (Debian, root)
SYSTEM_PKGS=(python3-venv python3-dev nodejs npm git make docker.io postgresql busybox-static)
if [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${SYSTEM_PKGS[@]}"; do
    case "$p" in
      nodejs) command -v node >/dev/null || missing+=("$p") ;;
      npm) command -v npm >/dev/null || missing+=("$p") ;;
      python3-venv) "$PY" -c 'import venv, ensurepip' 2>/dev/null || missing+=("$p") ;;
      python3-dev) [ -n "$("$PY" -c 'import sysconfig;import os;print(os.path.exists(sysconfig.get_paths()["include"]+"/Python.h") or "")')" ] || missing+=("$p") ;;
      docker.io) command -v dockerd >/dev/null || missing+=("$p") ;;
      postgresql) ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=("$p") ;;
      busybox-static) [ -x /bin/busybox ] || missing+=("$p") ;;
      *) command -v "$p" >/dev/null || missing+=("$p") ;;
    esac
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  command -v node >/dev/null || die "Node.js 20+ is missing: install it (Debian: apt-get install nodejs npm)."
fi
command -v npm >/dev/null || die "npm is missing: install it (Debian: apt-get install npm)."
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || die "AscendNet needs Python 3.11 ($PY is $("$PY" --version 2>&1)). Set PYTHON=/path/to/python3.11."

# ---------------------------------------------------------------- Python virtual environment
stamp=.venv/.ascendnet-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  if [ ! -x .venv/bin/python ]; then
    say "creating the Python virtual environment (.venv)"
    "$PY" -m venv .venv
  fi
  say "installing Python packages (pinned by constraints.txt); the first run takes a few minutes"
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install -q --upgrade pip \
         && .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "pip install failed (full log: $log)"
  fi
  touch "$stamp"
fi

# ---------------------------------------------------------------- npm toolchain
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the npm toolchain (anvil, forge, solcjs, OpenZeppelin)"
  # NOTE: not `npm ci`: the Foundry packages list optional platform builds that do not all
  # exist on the registry, which makes `npm ci` reject any lock file; `install --no-save`
  # installs the locked versions and never rewrites the lock.
  npm install --no-save --no-audit --no-fund --loglevel=error
fi
for tool in anvil forge; do
  node_modules/.bin/$tool --version >/dev/null 2>&1 || die "node_modules/.bin/$tool does not run; delete node_modules and run make setup again."
done

# ---------------------------------------------------------------- solc shim for ape-solidity
mkdir -p .solcx
ln -sfn ../tools/solc-shim.js ".solcx/solc-v$SOLC_VERSION"
chmod +x tools/solc-shim.js

say "ready: $(.venv/bin/python --version), node $(node --version), $(node_modules/.bin/anvil --version | head -1)"
