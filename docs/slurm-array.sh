#!/bin/bash
# One rsr-bench evaluation split over a Slurm job array: each array task computes part K of N
# of the (method, dataset, image) work, balanced by image size, into one shared results store.
# Tasks need no torch.distributed and may run on any host that mounts the store (NFS, Lustre,
# GPFS: a filesystem with atomic rename; object-store mounts are refused). A task that dies is
# re-submitted with the same index and computes only what its part still lacks.
#
#   sbatch docs/slurm-array.sh                    # 16 tasks, one GPU each
#   sbatch --dependency=afterany:<JOBID> --wrap "rsr-bench report --store $STORE"   # when all are done
#
#SBATCH --job-name=rsr-bench
#SBATCH --array=0-15
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --output=logs/rsr-bench-%A_%a.out

set -euo pipefail
STORE=${STORE:-/shared/rsr-bench-results}
METHODS=${METHODS:-all}
DATASETS=${DATASETS:-all}

# Fetch weights and datasets once before submitting (rsr-bench fetch ...), or let the tasks do
# it: a task waits while another fetches the same asset into the shared cache.
rsr-bench run --methods "$METHODS" --datasets "$DATASETS" --store "$STORE" --quiet \
    --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}"
