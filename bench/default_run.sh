#!/usr/bin/env bash
# Wall time of the default run (`python flows/emoji_flow.py run`: demo data, bundled MiniLM, local endpoint).
#   bash bench/default_run.sh          (PYTHON=... to use another interpreter than .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
start=$(date +%s.%N)
"${PYTHON:-.venv/bin/python}" flows/emoji_flow.py run > bench/out/default_run.log 2>&1
end=$(date +%s.%N)
wall=$(python3 -c "print(round($end - $start, 1))")
grep -E "test top-1|deployed version" bench/out/default_run.log | sed 's/^.*\] //'
echo "{\"default_run_wall_s\": $wall}" | tee bench/out/default_run.json
