#!/usr/bin/env bash
# One GPU session for issue 16: the CUDA tests of the counter-based noise (CPU vs CUDA bit
# equality, batch-size independence on the GPU) and the SmoothGrad benchmark on CUDA.
#
#   bash benchmarks/gpu_run.sh [OUTDIR]     # from the project root; OUTDIR defaults to $OUT
#
# Installs nothing: it needs torch, torchvision, timm, scipy, pytest and captum. Pure-Python
# packages missing on the machine (captum) can be put in ./pkgs, which goes on PYTHONPATH.
set -u -o pipefail
OUT=${1:-${OUT:-/tmp/gpu_out}}
mkdir -p "$OUT"
export PYTHONPATH=$PWD:$PWD/pkgs${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TQDM_DISABLE=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  $PY -c "import torch, captum; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'captum', captum.__version__)"
  uptime
} 2>&1 | tee "$OUT/env.txt"
$PY -m pytest tests/test_rng.py tests/test_saliency.py -q -p no:cacheprovider -k "(cuda or test_rng) and not interpreter" 2>&1 | tee "$OUT/tests.txt"
# three processes of 10 rounds (a ratio can shift from process to process), pooled; then what each method adds
for k in 1 2 3; do
  $PY benchmarks/bench_smoothgrad.py --device cuda --core --rounds 10 $([ $k = 1 ] && echo --rss) \
      --out "$OUT/smoothgrad_cuda_p$k.json" 2>&1 | tee "$OUT/bench_p$k.txt"
done
$PY benchmarks/pool_runs.py "$OUT"/smoothgrad_cuda_p?.json --out "$OUT/smoothgrad_cuda_pooled.json" 2>&1 \
    | tee "$OUT/pooled.txt"
$PY benchmarks/bench_smoothgrad.py --device cuda --overheads --out "$OUT/smoothgrad_overheads_cuda.json" 2>&1 \
    | tee "$OUT/overheads.txt"
