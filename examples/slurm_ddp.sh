#!/bin/bash
# Multi-node, multi-GPU data-parallel training with Lightning DDP under SLURM.
# Lightning reads SLURM's variables (one task per GPU): no torchrun needed here.
#   sbatch examples/slurm_ddp.sh
#SBATCH --job-name=mlip-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4          # = GPUs per node
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output=%x-%j.out
set -euo pipefail
# Shards on a shared file system; each rank reads its own frames (DistributedShardSampler).
srun .venv/bin/mlip-train --config configs/aspirin_demo.yaml \
    --run_dir runs/aspirin_ddp \
    --data.train shards/aspirin --data.num_workers 0 \
    --trainer.accelerator gpu --trainer.devices 4 --trainer.num_nodes 2 --trainer.strategy ddp
# Rerunning the same job resumes from runs/aspirin_ddp/checkpoints/last.ckpt.
# Without SLURM, on one machine:  torchrun --nproc-per-node 4 -m mlip.train.cli --config ... --trainer.devices 4
