#!/usr/bin/env bash
# Benchmark: installs the distractor corpora (Debian HTML documentation) and plotting, then runs
# `assistant bench`. Pass --quick for the small run CI can afford; other flags go to `assistant bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/assistant ] || bash scripts/setup.sh
if [ ! -d /usr/share/doc/python-scipy-doc/html ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-doc python-django-doc \
    python-sqlalchemy-doc postgresql-doc-15 libboost1.81-doc python-scipy-doc >/dev/null
fi
.venv/bin/python -m pip install -q -e ".[bench]"
export HF_HUB_OFFLINE=1
exec .venv/bin/assistant bench "$@"
