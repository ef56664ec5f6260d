#!/usr/bin/env bash
# The checks that need a GPU, as one short script for a lent device machine (see the `device`
# tool): the CUDA tests, the trainer benchmark on cuda, and one job through a worker that trains
# on cuda, end to end (the spec's model trained on the GPU, exported from a CPU copy, graded on
# its ONNX file). Prints its numbers and writes its logs under $OUT (or ./gpu-check-out).
#
# Run from the repository root on a machine with PostgreSQL and Redis reachable (DATABASE_URL,
# REDIS_URL) and the project installed (`make install`), or let it start what it can:
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
export PYTHONUNBUFFERED=1
status=0

step() { echo; echo "=== $*"; }

step "the device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" \
  | tee -a "$OUT/device.txt"

step "the CUDA tests (skipped without a GPU elsewhere)"
"$PY" -m pytest -q -p no:cacheprovider -rA \
  tests/runtime/test_datasets.py::test_on_a_gpu_the_tensors_live_there_across_calls \
  tests/runtime/test_artifacts.py::test_a_model_trained_on_cuda_exports_from_a_cpu_copy_and_stays_on_cuda \
  2>&1 | tee "$OUT/cuda-tests.log" || status=1

step "the trainer against the tutorial pipeline, on cuda"
"$PY" benchmarks/train_vs_seed.py --device cuda --samples 10000 --epochs 2 --repeats 3 \
  2>&1 | tee "$OUT/train_vs_seed.log" || status=1

step "a job through a worker that trains on cuda (spec and code submissions keep their models)"
"$PY" -m pytest -q -p no:cacheprovider -rA tests/jobs/test_models_kept.py \
  2>&1 | tee "$OUT/job-on-cuda.log" || status=1

echo
echo "gpu_check: $([ $status -eq 0 ] && echo passed || echo FAILED); logs in $OUT/"
exit $status
