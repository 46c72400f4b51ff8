#!/usr/bin/env bash
# Train and evaluate AMP-SC and its benchmarks at cpu scale on CIFAR-10, in an order that reuses shared
# steps (runs/_stages), and log each command with its wall time. Re-running resumes where it stopped.
# Usage: DIGISEM_DATA=../shared/data bash benchmarks/ampsc_cpu.sh [recipe ...]
set -euo pipefail
cd "$(dirname "$0")/.."
recipes=("$@")
if [ ${#recipes[@]} -eq 0 ]; then
  recipes=(ampsc-cifar10-4bit-cpu softhe22-cifar10-4bit-cpu he22-cifar10-4bit-cpu conventional-cifar10-4bit-cpu
           softq-cifar10-4bit-cpu softamp-cifar10-4bit-cpu softamp-womatk-cifar10-4bit-cpu softhe22-wmatk-cifar10-4bit-cpu
           ampsc-cifar10-2bit-cpu softhe22-cifar10-2bit-cpu
           ampsc-mask1p-cifar10-4bit-cpu ampsc-mask3p-cifar10-4bit-cpu ampsc-mask4p-cifar10-4bit-cpu ampsc-mask5p-cifar10-4bit-cpu
           ampsc-hr-4bit-cpu)
fi
bash benchmarks/train_chain.sh runs/ampsc_cpu_commands.log "${recipes[@]}"
