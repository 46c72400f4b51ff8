"""Running under ``torchrun``: the rank and world size, with the process group started once.

Training shards images across ranks (``DistributedSampler``); an SNR sweep shards its SNR points
(each point keeps its own noise generator, so a sharded sweep gives the single process's numbers).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def distributed_context() -> tuple[int, int]:
    """(rank, world size); initializes the process group once when launched by ``torchrun``
    (NCCL with CUDA, else gloo); ``(0, 1)`` in a plain process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
