#!/usr/bin/env bash
# Wall time and test scores of the default run (`python flows/emoji_flow.py run`: demo data, bundled MiniLM, local
# endpoint).   bash bench/default_run.sh          (PYTHON=... to use another interpreter than .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
start=$(date +%s.%N)
"${PYTHON:-.venv/bin/python}" flows/emoji_flow.py run > bench/out/default_run.log 2>&1
end=$(date +%s.%N)
grep -E "test top-1|deployed version" bench/out/default_run.log | sed 's/^.*\] //'
python3 - "$start" "$end" <<'PY' | tee bench/out/default_run.json
import json, re, sys
log = open("bench/out/default_run.log", encoding="utf-8").read()
top1, top3, f1 = re.search(r"test top-1 ([\d.]+)%, top-3 ([\d.]+)%, macro-F1 ([\d.]+)", log).groups()
print(json.dumps({"default_run_wall_s": round(float(sys.argv[2]) - float(sys.argv[1]), 1), "top1_percent": float(top1),
                  "top3_percent": float(top3), "macro_f1": float(f1)}))
PY
