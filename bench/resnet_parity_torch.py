#!/usr/bin/env python3
"""Parity with torchvision, second half (after node dist/bench/resnet-parity.js): loads our state
dict (safetensors, torchvision's names) into torchvision's resnet50 / resnet18 with load_state_dict
(strict: only the integer num_batches_tracked buffers may be missing), runs the same input in eval
mode and in train mode (batch statistics, running statistics updated with momentum 0.1 and the
unbiased variance), and compares logits and running statistics with ours. float32 on the CPU, TF32
off. Exits 1 when a difference exceeds the tolerance.

Usage: python3 bench/resnet_parity_torch.py [--model resnet50|resnet18] [--dir out] [--rtol 1e-3] [--atol 1e-4]
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch
import torchvision

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path: str) -> dict:
    """The tensors of a safetensors file (8-byte little-endian header length, JSON header, data), as numpy arrays."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=DTYPES[meta["dtype"]]).reshape(meta["shape"]).copy()
    return out


def compare(what: str, ours: np.ndarray, theirs: torch.Tensor, rtol: float, atol: float) -> bool:
    t = theirs.detach().cpu().numpy()
    diff = np.abs(ours - t)
    ok = bool(np.all(diff <= atol + rtol * np.abs(t)))
    print(f"{'ok  ' if ok else 'FAIL'} {what}: max |ours - torchvision| {diff.max():.3g} (max |torchvision| {np.abs(t).max():.3g})")
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["resnet50", "resnet18"], default="resnet50")
    p.add_argument("--dir", default="out")
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol", type=float, default=1e-4)
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    weights = read_safetensors(f"{a.dir}/{a.model}-weights.safetensors")
    io = read_safetensors(f"{a.dir}/{a.model}-io.safetensors")
    model = getattr(torchvision.models, a.model)(weights=None)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    bad_missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    print(f"torchvision {torchvision.__version__} {a.model}: {len(weights)} tensors loaded; missing {len(missing)} "
          f"(num_batches_tracked only: {not bad_missing}), unexpected {len(unexpected)}")
    ok = not bad_missing and not unexpected
    if not ok:
        print(f"FAIL state dict: missing {bad_missing[:5]}, unexpected {unexpected[:5]}")
    x = torch.from_numpy(io["input"])
    with torch.no_grad():
        model.eval()
        ok &= compare("eval-mode logits", io["logits.eval"], model(x), a.rtol, a.atol)
        model.train()
        ok &= compare("train-mode logits (batch statistics)", io["logits.train"], model(x), a.rtol, a.atol)
    state = model.state_dict()
    after = {k[len("after."):]: v for k, v in io.items() if k.startswith("after.")}
    worst = all(compare(f"running statistic {k}", v, state[k], a.rtol, a.atol) for k, v in list(after.items())[:6])
    rest = all(np.allclose(v, state[k].numpy(), rtol=a.rtol, atol=a.atol) for k, v in after.items())
    print(f"{'ok  ' if rest else 'FAIL'} all {len(after)} running statistics after the train-mode step")
    ok &= worst and rest
    print("parity with torchvision: OK" if ok else "parity with torchvision: FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
