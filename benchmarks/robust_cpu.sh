#!/usr/bin/env bash
# Train the robust semantic communication systems at cpu scale on CIFAR-10 (the clean masked VQ-VAE,
# JSCC, their adversarially fine-tuned versions, the J sweep, the AT-only ablation and the
# reconstruction model), logging each command with its wall time, then run the analyses report.
# Re-running resumes where it stopped (finished stages are cached under runs/_stages).
# Usage: DIGISEM_DATA=../shared/data bash benchmarks/robust_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash benchmarks/train_chain.sh runs/robust_cpu_commands.log vqvae-cifar10-cpu jscc-cifar10-cpu robust-cifar10-cpu jscc-at-cifar10-cpu \
  vqvae-j4-cifar10-cpu vqvae-j16-cifar10-cpu vqvae-j64-cifar10-cpu vqvae-j256-cifar10-cpu vqvae-at-cifar10-cpu vqvae-recon-cifar10-cpu robust-noisemask-cifar10-cpu
python benchmarks/robust_report.py --runs runs --out docs/results/robust
