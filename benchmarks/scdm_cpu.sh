#!/usr/bin/env bash
# Train the SCDM paper's systems at cpu scale on CIFAR-10: the 18 dB JCM codec, SCDM on it (Stages 1-2),
# SCDM with the one-step sampler, then the per-SNR JCM family; log each command with its wall time.
# Re-running resumes where it stopped.
# Usage: DIGISEM_DATA=../shared/data bash benchmarks/scdm_cpu.sh [recipe ...]
set -euo pipefail
cd "$(dirname "$0")/.."
recipes=("$@")
if [ ${#recipes[@]} -eq 0 ]; then
  recipes=(jcm-cifar10-64qam-cpu scdm-cifar10-64qam-cpu scdm-cifar10-64qam-tweedie-cpu jcm-cifar10-64qam-snr-18-cpu jcm-cifar10-64qam-snr-6-cpu
           jcm-cifar10-64qam-snr6-cpu jcm-cifar10-64qam-snr0-cpu jcm-cifar10-64qam-snr12-cpu jcm-cifar10-64qam-snr-12-cpu)
fi
bash benchmarks/train_chain.sh runs/scdm_cpu_commands.log "${recipes[@]}"
