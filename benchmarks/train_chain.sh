#!/usr/bin/env bash
# Train recipes one after another with --resume, appending each command and its wall time to a log.
# Usage: bash benchmarks/train_chain.sh LOG_FILE recipe [recipe ...]   (needs DIGISEM_DATA for real data)
set -euo pipefail
cd "$(dirname "$0")/.."
log="$1"
shift
mkdir -p "$(dirname "$log")"
for recipe in "$@"; do
  start=$(date +%s)
  digisem train "$recipe" --resume --quiet
  echo "digisem train $recipe --resume  # $(( $(date +%s) - start )) s" | tee -a "$log"
done
