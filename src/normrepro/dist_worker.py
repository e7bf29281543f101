"""One process of a data-parallel job: ``torchrun ... -m normrepro.dist_worker <run_dir> <label>``.

Started by ``normrepro.distributed.launch`` (not meant to be run by hand): joins the process group that
torchrun set up (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT`` in the environment), reads the resolved
config the launcher saved in the run directory and trains with ``normrepro.train.run``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import OmegaConf

from normrepro.distributed import LAUNCH_CONFIG, backend_for
from normrepro.errors import UserError
from normrepro.train import run


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.exit("usage: torchrun --nproc_per_node=N -m normrepro.dist_worker <run_dir> <label>")
    run_dir, label = Path(argv[0]), argv[1]
    cfg = OmegaConf.load(run_dir / LAUNCH_CONFIG)
    backend = backend_for(cfg.dist.backend, cfg.device)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    logging.basicConfig(level=logging.INFO if dist.get_rank() == 0 else logging.WARNING,
                        format=f"[%(asctime)s][rank {dist.get_rank()}][%(name)s][%(levelname)s] - %(message)s")
    try:
        run(cfg, run_dir, label)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
