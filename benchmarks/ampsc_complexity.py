"""Receiver size of AMP-SC and its benchmarks (paper Table V): parameters and FLOPs of IRSNet + decoder.

FLOPs are 2 x multiply-accumulates of convolutions, transposed convolutions and linear layers
(``torch.utils.flop_counter``); the paper's "FLOPs" column counts MACs (see the AMP-SC helper notes
in docs/results/ampsc.md). Usage: ``python benchmarks/ampsc_complexity.py [--out FILE]``.
"""

from __future__ import annotations

import argparse

from digisem.io import write_json
from digisem.systems.ampsc import AMPSC, AMPSCConfig, receiver_complexity

CONFIGS = {
    "AMP-SC, CIFAR, cpu scale (width 48, IRSNet 16)": (AMPSCConfig(preset="cifar", width=48, irsnet_width=16), 32),
    "SoftHe22, CIFAR, cpu scale (width 48)": (AMPSCConfig(preset="cifar", width=48, irsnet=False), 32),
    "AMP-SC, CIFAR, zoo scale (width 64, IRSNet 24)": (AMPSCConfig(preset="cifar", width=64, irsnet_width=24), 32),
    "SoftHe22, CIFAR, zoo scale (width 64)": (AMPSCConfig(preset="cifar", width=64, irsnet=False), 32),
    "AMP-SC, CIFAR, paper width (256, IRSNet 64)": (AMPSCConfig(preset="cifar", width=256, irsnet_width=64), 32),
    "SoftHe22, CIFAR, paper width (256)": (AMPSCConfig(preset="cifar", width=256, irsnet=False), 32),
    "AMP-SC, high resolution, authors' layout (ratio 1/24, IRSNet 64), 256x256": (AMPSCConfig(preset="hr", width=256, ratio=1 / 24, irsnet_width=64), 256),
    "SoftHe22, high resolution, authors' layout (ratio 1/24), 256x256": (AMPSCConfig(preset="hr", width=256, ratio=1 / 24, irsnet=False), 256),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="ampsc_complexity.json")
    args = parser.parse_args()
    rows = []
    print(f"{'receiver':75s} {'params (M)':>10s} {'GFLOPs':>8s} {'GMACs':>7s}")
    for name, (config, size) in CONFIGS.items():
        numbers = receiver_complexity(AMPSC(config), size)
        rows.append({"receiver": name, "image_size": size, **numbers})
        print(f"{name:75s} {numbers['params'] / 1e6:10.3f} {numbers['flops'] / 1e9:8.3f} {numbers['macs'] / 1e9:7.3f}")
    write_json(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
