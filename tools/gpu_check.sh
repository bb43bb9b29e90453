#!/usr/bin/env bash
# tools/gpu_check.sh — every GPU check of scoreaudio in one time-boxed run, for a lent GPU machine.
#
#   OUT=/some/folder tools/gpu_check.sh          # default OUT: ./gpu_results
#
# Steps (each under `timeout`, the whole run inside GPU_CHECK_BUDGET seconds, default 465 < 8 min;
# a failing or timed-out step is recorded and the script goes on):
#    1 env          nvidia-smi, python/torch/CUDA versions
#    2 imports      the Python packages scoreaudio needs (no installs: see "Packages" below)
#    3 pytest_gpu   pytest -m gpu (tests/test_gpu.py)
#    4 bench_matmul matmul suite: bf16, fp32 and TF32 FLOP/s of this GPU
#    5 bench_train  train suite, base presets, bf16 autocast, plus --ab layout,sync
#                   (channels-last against the plain layout; train.py's per-step host syncs against none)
#    6 ljspeech200  200 steps of recipes/ljspeech.yaml on the built-in corpus at 22.05 kHz
#                   (data=synthetic data.sample_rate=22050), run dir under $OUT
#    7 ddp          2-process DDP smoke run under torchrun if >1 GPU is visible, else 1 process
#    8 bench_sample sample suite (small spectrogram and waveform models; 30, 50, 100, 1000 NFE)
#    9 bench_denoise denoise suite (2-step temp runs of the small preset; 4, 60, 600 s inputs)
#   10 bench_compile train suite, unet2d_base, with and without torch.compile (speed-up = ratio);
#                   last because compiling is the slowest step and the least needed
# The limits below are caps; a step that ends early leaves its time to the later ones.
# Results: $OUT/summary.md (status table + every benchmark table), $OUT/status.tsv, and
# $OUT/gpu_results.tgz (all logs, JSON, Markdown, the small files of the training runs).
# At most 8 files come back from a lent machine: everything else is packed into the tarball.
#
# Python: .venv/bin/python if present and its torch sees CUDA, else python3 (the image's).
# Packages: the image has torch, numpy, scipy, matplotlib, tqdm, pytest but not omegaconf, soundfile,
# soxr or librosa. Nothing is fetched here; if a folder of wheels is carried (./.whl, or $WHEELS),
# they are unpacked with pip --no-index into a temporary folder put on PYTHONPATH. Prepare it on a
# machine with network access:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl omegaconf antlr4-python3-runtime==4.9.3 soundfile cffi pycparser soxr
set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${OUT:-./gpu_results}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK="$OUT/work"  # logs and run dirs; packed into the tarball at the end
mkdir -p "$WORK/logs"
STATUS="$OUT/status.tsv"
printf 'step\tstatus\tseconds\tlog\n' > "$STATUS"
BUDGET=${GPU_CHECK_BUDGET:-465}
T0=$(date +%s)
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export SCOREAUDIO_CACHE="$WORK/cache"

elapsed() { echo $(( $(date +%s) - T0 )); }

# run_step NAME MAX_SECONDS CMD...: time-boxed; the limit shrinks to what is left of the budget.
run_step() {
  local name=$1 max=$2; shift 2
  local left=$(( BUDGET - $(elapsed) - 15 ))
  local limit=$(( max < left ? max : left ))
  local log="$WORK/logs/$name.log"
  if [ "$limit" -lt 20 ]; then
    printf '%s\tSKIPPED (budget spent)\t0\t%s\n' "$name" "-" >> "$STATUS"
    echo "== $name: skipped, $(elapsed) s of $BUDGET s spent"
    return 0
  fi
  echo "== $name (limit ${limit} s, at $(elapsed) s)"
  local t=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t ))
  local st="ok"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then st="TIMEOUT after ${limit} s"; elif [ $rc -ne 0 ]; then st="FAILED (exit $rc)"; fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$st" "$dt" "logs/$name.log" >> "$STATUS"
  echo "   $st in ${dt} s; last lines:"
  tail -n 4 "$log" | sed 's/^/   | /'
  return 0
}

# ---- python --------------------------------------------------------------------------------------
PY=""
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  PY=.venv/bin/python
else
  PY=$(command -v python3 || command -v python)
fi
echo "python: $PY"

WHEELS=${WHEELS:-.whl}
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  SITE=$(mktemp -d /tmp/scoreaudio-site.XXXX)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl \
    > "$WORK/logs/wheels.log" 2>&1 && echo "carried wheels unpacked into $SITE" || echo "carried wheels: pip failed (see logs/wheels.log)"
  export PYTHONPATH="$SITE:${PYTHONPATH:-}"
fi
export PYTHONPATH="$REPO:${PYTHONPATH:-}"

NGPU=$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)

# ---- steps ---------------------------------------------------------------------------------------
run_step env 20 bash -c "nvidia-smi; '$PY' -c 'import torch, platform; print(platform.python_version(), torch.__version__, torch.version.cuda, torch.cuda.is_available(), [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])'; nproc; free -g"
run_step imports 30 "$PY" -c '
import importlib, sys
need = ["torch", "numpy", "scipy", "omegaconf", "soundfile", "soxr", "tqdm", "matplotlib", "pytest"]
missing = []
for m in need:
    try:
        importlib.import_module(m)
    except Exception as e:
        missing.append(f"{m} ({type(e).__name__}: {e})")
print("missing:", "; ".join(missing) if missing else "none")
import scoreaudio, scoreaudio.train, scoreaudio.denoise  # the package itself
print("scoreaudio imports ok")
sys.exit(1 if missing else 0)'
run_step pytest_gpu 60 "$PY" -m pytest -q -m gpu tests/test_gpu.py -rs --junitxml="$WORK/pytest_gpu.xml"

BENCH=("$PY" tools/benchmark.py --device cuda)
run_step bench_matmul 25 "${BENCH[@]}" matmul --json "$WORK/bench_matmul.json" --markdown "$WORK/bench_matmul.md"
run_step bench_train 75 "${BENCH[@]}" train --presets base --repeats 5 --ab layout,sync \
  --json "$WORK/bench_train.json" --markdown "$WORK/bench_train.md"

run_step ljspeech200 110 "$PY" -m scoreaudio.train recipes/ljspeech.yaml data=synthetic data.sample_rate=22050 \
  train.steps=200 train.log_every=20 train.val_every=100 train.val_examples=16 train.ckpt_every=200 \
  train.num_samples=1 train.sample_seconds=2.0 train.num_workers=4 train.resume=never \
  train.run_dir="$WORK/ljspeech200"

if [ "$NGPU" -gt 1 ]; then NPROC=2; else NPROC=1; fi
run_step ddp 45 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m scoreaudio.train \
  recipes/quickstart.yaml model=unet2d_tiny train=gpu train.steps=20 train.batch_size=8 train.log_every=5 \
  train.val_every=20 train.val_examples=8 train.ckpt_every=20 train.num_samples=0 train.num_workers=2 \
  train.resume=never train.run_dir="$WORK/ddp_run"

run_step bench_sample 75 "${BENCH[@]}" sample --presets small --quick --sample-seconds 2 \
  --nfes 30,50,100,1000 --sample-budget 3 --json "$WORK/bench_sample.json" --markdown "$WORK/bench_sample.md"
run_step bench_denoise 90 "${BENCH[@]}" denoise --presets small --denoise-seconds 4,60,600 --denoise-budget 20 \
  --json "$WORK/bench_denoise.json" --markdown "$WORK/bench_denoise.md"
run_step bench_compile 100 "${BENCH[@]}" train --presets base --backbones unet2d --repeats 5 --compile \
  --json "$WORK/bench_compile.json" --markdown "$WORK/bench_compile.md"

# ---- collect -------------------------------------------------------------------------------------
{
  echo "# scoreaudio GPU check"
  echo
  echo "$(date -Is), python $PY, $NGPU GPU(s), $(elapsed) s of a $BUDGET s budget"
  echo
  echo "| step | status | seconds | log |"
  echo "|---|---|---|---|"
  tail -n +2 "$STATUS" | awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}'
  echo
  for f in "$WORK"/bench_*.md; do [ -f "$f" ] && { cat "$f"; echo; }; done
  for run in ljspeech200 ddp_run; do
    [ -f "$WORK/$run/summary.json" ] && { echo "## $run summary.json"; echo '```'; cat "$WORK/$run/summary.json"; echo '```'; }
  done
} > "$OUT/summary.md"
# the training runs' checkpoints are hundreds of MB: keep their small files only
find "$WORK" -name '*.pt' -delete 2>/dev/null
rm -rf "$WORK/cache"
tar -czf "$OUT/gpu_results.tgz" -C "$OUT" work status.tsv summary.md 2>/dev/null
rm -rf "$WORK"
echo
cat "$OUT/summary.md" | head -n 60
echo
echo "wrote $OUT/summary.md, $OUT/status.tsv, $OUT/gpu_results.tgz in $(elapsed) s"
