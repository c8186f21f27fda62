#!/usr/bin/env bash
# Session 11 device calls (GPU machine: 16 cores, one H200). From the project root there:
#   source .device-carry/env.sh && bash bench/device-session11.sh <stage>
set -uo pipefail
stage=${1:-graph}
source "$(dirname "$0")/_device-tests.sh"
resnet() { timeout "$1" node dist/bench/resnet-gpu.js --batches 64,256 --steps 5 "${@:2}" 2>&1 | tail -2; }
# graph: cuDNN's backend API (engine heuristics, PyTorch's filter) against the legacy cudnnGet*Algorithm_v7 choice: the
#        cuDNN GPU suites under the new default, ResNet-50 in this thread in fp32, TF32 and bf16 under both, the fp32 per-op profile.
if [ "$stage" = graph ] || [ "$stage" = all ]; then
  tests 200 cudnn conv-cudnn conv-bf16-cudnn
  for api in graph legacy; do
    for pp in "highest fp32" "high fp32" "high bf16"; do
      set -- $pp; echo "== $api precision $1 policy $2"
      SYNK_CUDNN_API=$api resnet 100 --precision $1 --policy $2
    done
  done
  SYNK_CUDA_PROFILE=1 timeout 80 node dist/bench/resnet-gpu.js --batches 64 --steps 3 --precision highest --policy fp32 > $OUT/profile-graph-fp32.txt 2>&1
  head -24 $OUT/profile-graph-fp32.txt
fi
# bisect: the CPU MLP step at batch 512 on 16 workers went from 30.2 ms (session 7) to 49-52 ms (session 9). Builds of
#         earlier commits travel under bisect/<commit>/dist (made by bench/bisect-builds.sh); each runs twice, interleaved.
if [ "$stage" = bisect ] || [ "$stage" = bisect-peer ]; then
  mlp_bisect 60
fi
# peer: PyTorch eager ResNet-50 (cudnn.benchmark on, as resnet_torch.py sets it, and off) in fp32, TF32 and bf16 + channels_last.
if [ "$stage" = peer ] || [ "$stage" = bisect-peer ]; then
  timeout 200 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,tf32,bf16 --batches 64,256 --steps 10 2>&1 | tail -7
  timeout 120 python3 bench/resnet_torch.py --model resnet50 --modes eager --settings fp32,tf32 --batches 64 --steps 10 --no-cudnn-benchmark 2>&1 | tail -3
fi
