#!/usr/bin/env bash
# The issue-24 family rerun: DS ROOT (e.g. viper ../shared/datasets/VIPeR), from a frozen copy
# of genreid at commit 1b3b60b (the configs the rerun started with), into /work/runs/family2_DS.
# THREADS=2 runs its jobs at two threads (alone on the machine: a DG-Net cell, say).
set -e
DS=$1; ROOT=$(realpath "$2"); REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SNAP=/work/snap_family
if [ ! -d $SNAP/genreid ]; then
  mkdir -p $SNAP && git -C "$REPO" archive 1b3b60b genreid | tar -x -C $SNAP
fi
cd $SNAP
export OMP_NUM_THREADS=${THREADS:-1} MKL_NUM_THREADS=${THREADS:-1}
exec "$REPO"/.venv/bin/python -m genreid reproduce family -d "$DS" -r "$ROOT" --splits 10 \
  --out /work/runs/family2_"$DS" --jobs 1 --threads "${THREADS:-1}" --rerank
