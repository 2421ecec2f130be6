#!/usr/bin/env bash
# The CUDA checks and GPU benchmarks, in one run on a lent GPU machine (its python3 holds
# torch). Writes logs under $OUT (or ./gpu_out). Usage: bash benchmarks/gpu_checks.sh
set -u
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg GENREID_CACHE=/tmp/genreid_cache
PY=${PY:-python3}
{ nvidia-smi -L; $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"; } 2>&1 | tee "$OUT/device.log"
# 1. the CUDA paths of the test suite (distances, ranking, re-ranking, AMP training, GANs)
$PY -m pytest -q -p no:cacheprovider tests/test_distance.py tests/test_metrics.py \
  tests/test_rerank.py tests/test_gan_models.py tests/test_loop.py tests/test_transforms.py \
  2>&1 | tail -6 | tee "$OUT/pytest.log"
# 2. evaluation and re-ranking at Market-1501 size on the GPU
$PY benchmarks/eval_speed.py --device cuda 2>&1 | tail -6 | tee "$OUT/eval_speed.log"
$PY - <<'PYEOF' 2>&1 | tee "$OUT/rerank_gpu.log"
import json, sys, time
import torch
sys.path.insert(0, "benchmarks")
from eval_speed import make_market_problem
from genreid.eval.ranking import re_ranking_features
p = make_market_problem(n_query=3368, n_gallery=15913, n_ids=751, dim=2048)
qf, gf = torch.as_tensor(p["qf"]), torch.as_tensor(p["gf"])
re_ranking_features(qf[:200], gf[:1000], device="cuda")  # warm-up
torch.cuda.synchronize(); t0 = time.perf_counter()
d = re_ranking_features(qf, gf, device="cuda")
torch.cuda.synchronize(); t = time.perf_counter() - t0
print(json.dumps({"benchmark": "rerank_gpu", "N": 3368 + 15913, "dim": 2048, "seconds": round(t, 3),
                  "shape": list(d.shape), "max_gpu_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20)}))
PYEOF
# 3. training and GAN throughput (AMP bf16 on CUDA)
#    (every paper recipe: genreid reproduce --plan's GPU hours read these figures)
$PY benchmarks/train_speed.py --device cuda --iters 20 --warmup 3 --recipes \
  tiny,ide_paper,bottleneck_released,bottleneck_paper,bottleneck_densenet_paper,dgnet_teacher_paper \
  2>&1 | tail -8 | tee "$OUT/train_speed.log"
$PY benchmarks/gan_speed.py --device cuda 2>&1 | tail -7 | tee "$OUT/gan_speed.log"
# 4. an end-to-end tiny run with AMP on the GPU: render, train, extract, evaluate
$PY -m genreid.cli data synth --out /tmp/synth --ids 200 --cams 6 --seed 0 > /dev/null 2>&1
$PY -m genreid.cli train --config tiny data.root=/tmp/synth train.precision=bf16 \
  train.epochs=8 --out /tmp/run_gpu 2>&1 | tail -4 | tee "$OUT/train_gpu.log"
cp /tmp/run_gpu/results.json "$OUT/train_gpu_results.json" 2>/dev/null
# 5. the loop on CUDA: a GAN through `genreid train` (task key) and an end-to-end ratio
$PY -m genreid.cli train --config gan/dcgan_tiny data.root=/tmp/synth train.epochs=2 \
  --out /tmp/gan_gpu 2>&1 | tail -3 | tee "$OUT/gan_gpu.log"
$PY benchmarks/train_speed.py --end-to-end --root /tmp/synth --epochs 3 --device cuda 2>&1 \
  | tail -9 | tee "$OUT/end_to_end_gpu.log"
# 6. DG-Net: paper-scale iterations/s with AMP on one GPU (ResNet-50 E_a, 256x128, 8 pairs),
#    then a short tiny run end to end (teacher, DG-Net with L_prim/L_fine on, extract, swaps)
$PY benchmarks/dgnet_speed.py --config dgnet_paper,dgnet_tiny --device cuda --iters 20 2>&1 \
  | tail -3 | tee "$OUT/dgnet_speed.log"
$PY -m genreid.cli train --config dgnet_tiny_baseline data.root=/tmp/synth train.epochs=4 \
  --out /tmp/dgnet_teacher > /dev/null 2>&1
$PY -m genreid.cli train --config dgnet_tiny data.root=/tmp/synth teacher=/tmp/dgnet_teacher \
  train.precision=bf16 train.epochs=2 train.epoch_iters=100 loss.start=100 loss.warmup=20 \
  --out /tmp/dgnet_gpu 2>&1 | tail -3 | tee "$OUT/dgnet_gpu.log"
cp /tmp/dgnet_gpu/results.json "$OUT/dgnet_gpu_results.json" 2>/dev/null
cp /tmp/dgnet_gpu/figures/swap_002.png "$OUT/dgnet_gpu_swap.png" 2>/dev/null
$PY -m genreid.cli extract --run /tmp/dgnet_gpu -d market1501 -r /tmp/synth \
  --out /tmp/dgnet_gpu/feats.npz 2>&1 | tail -1 | tee -a "$OUT/dgnet_gpu.log"
