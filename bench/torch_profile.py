"""Where PyTorch's training step spends GPU time, kernel by kernel (torch.profiler), as the peer of
our per-op profile (SYNK_CUDA_PROFILE=1): the MLP of bench/train_torch.py (Adam) and torchvision's
ResNet-50 of bench/resnet_torch.py (SGD momentum), one configuration per call.

Usage: python3 bench/torch_profile.py --model mlp|resnet50 --batch 8192 [--tf32] [--bf16] [--cudnn-benchmark] [--steps 5] [--rows 25]
"""
import argparse
import re
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["mlp", "resnet50"], default="mlp")
    p.add_argument("--batch", type=int, default=8192)
    p.add_argument("--tf32", action="store_true", help="TF32 matrix products and convolutions allowed")
    p.add_argument("--bf16", action="store_true", help="torch.autocast(bfloat16), channels_last for the ResNet")
    p.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark on (bench/resnet_torch.py's default)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rows", type=int, default=25)
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    dev = torch.device("cuda")
    torch.manual_seed(1)
    if a.model == "mlp":
        model = nn.Sequential(nn.Linear(784, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10)).to(dev)
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        x = torch.rand(a.batch, 784, device=dev)
        y = torch.randint(0, 10, (a.batch,), device=dev)
    else:
        import torchvision
        model = torchvision.models.resnet50(num_classes=1000).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x = torch.rand(a.batch, 3, 224, 224, device=dev)
        y = torch.randint(0, 1000, (a.batch,), device=dev)
        if a.bf16:
            model = model.to(memory_format=torch.channels_last)
            x = x.to(memory_format=torch.channels_last)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=a.bf16):
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(a.steps):
            step()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    total = sum(e.self_device_time_total for e in events) / a.steps / 1000
    print(f"PyTorch {torch.__version__} {a.model} batch {a.batch} tf32={a.tf32} bf16={a.bf16} cudnn.benchmark={a.cudnn_benchmark}: "
          f"GPU time {total:.3f} ms/step, "
          f"{sum(e.count for e in events) // a.steps} kernels/step")
    # Convolution and matrix-product kernels (cuDNN's and cuBLAS's), batch norm's aside: the peer of our conv ops.
    conv = re.compile(r"conv|xmma|implicit|dgrad|wgrad|winograd|fft|gemm|cutlass", re.I)
    conv_ms = sum(e.self_device_time_total for e in events if conv.search(e.key) and not re.search(r"bn_|batch_?norm", e.key, re.I))
    print(f"convolution and GEMM kernels: {conv_ms / a.steps / 1000:.3f} ms/step")
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[: a.rows]:
        ms = e.self_device_time_total / a.steps / 1000
        print(f"{ms:8.3f} ms {e.count // a.steps:5d}x  {e.key[:110]}")


if __name__ == "__main__":
    main()
