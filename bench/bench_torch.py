"""bench_torch.py - PyTorch (CPU) training throughput for the models bench_cpu.c times.
Run with Debian's python3: /usr/bin/python3 bench/bench_torch.py --threads 2
--models mlp_b64,gpt2_b4_t64 picks some. Prints lines
  TORCH name=<mlp_b64|mlp_b512|cnn_b64|cnn_b512|resnet18_b32|gpt2_b4_t64> value=<samples/s> cpu=<samples per CPU-second>
(gpt2_b4_t64: tokens). The models are bench_cpu.c's: examples/resnet18.c (CIFAR ResNet-18: 3x3 stem,
no max pool) and examples/gpt2.c (GPT-2 124M with q, k, v as three C x C linears, tied LM head)."""
import argparse
import os
import sys
import time

# torch.set_num_threads limits torch's own pool, but Debian's torch also runs BLAS calls on
# OpenBLAS/OpenMP threads: pin those to the same count before torch loads, or "1 thread" uses
# every core (seen here: 2 CPU-seconds per second at --threads 1).
_threads = "1"
for i, arg in enumerate(sys.argv):
    if arg == "--threads" and i + 1 < len(sys.argv):
        _threads = sys.argv[i + 1]
    elif arg.startswith("--threads="):
        _threads = arg.split("=", 1)[1]
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = _threads

import math  # noqa: E402
import torch  # noqa: E402  (after the thread variables)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


def resnet18(width=64, classes=10):
    layers, cin = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()], width
    for stage in range(4):
        for b in range(2):
            layers.append(BasicBlock(cin, width << stage, 2 if stage > 0 and b == 0 else 1))
            cin = width << stage
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


class GPT2Block(nn.Module):
    def __init__(self, C, heads):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.q, self.k, self.v, self.attn_proj = (nn.Linear(C, C) for _ in range(4))
        self.fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def attention(self, x):
        B, T, C = x.shape
        q, k, v = (f(x).view(B, T, self.heads, C // self.heads).transpose(1, 2) for f in (self.q, self.k, self.v))
        a = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.heads)
        a = a.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        return self.attn_proj((a @ v).transpose(1, 2).reshape(B, T, C))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, V=50257, T=64, L=12, heads=12, C=768):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(GPT2Block(C, heads) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.h:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied LM head


def setup(kind, batch):
    """model, optimizer, inputs, targets, samples (tokens) per step"""
    if kind == "gpt2":
        model = GPT2()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
        tokens = torch.randint(0, 50257, (batch, 65))
        return model, opt, tokens[:, :-1], tokens[:, 1:].reshape(-1), batch * 64
    model = {"mlp": mlp, "cnn": cnn, "resnet18": resnet18}[kind]()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, 3, 32, 32) if kind == "resnet18" else torch.rand(batch, 1, 28, 28)
    return model, opt, x, torch.randint(0, 10, (batch,)), batch


def throughput(kind, batch, secs):
    torch.manual_seed(1)
    model, opt, x, y, per_step = setup(kind, batch)
    loss_fn = nn.CrossEntropyLoss()
    steps, s, t0, c0 = 0, 0, 0.0, 0.0
    while True:
        if s == 2:
            t0, c0 = time.perf_counter(), time.process_time()  # two warm-up steps
        opt.zero_grad(set_to_none=False)
        out = model(x)
        loss = loss_fn(out.reshape(-1, out.shape[-1]), y)
        loss.backward()
        opt.step()
        if s >= 2:
            steps += 1
        s += 1
        if s >= 5 and time.perf_counter() - t0 > secs:
            break
    return steps * per_step / (time.perf_counter() - t0), steps * per_step / (time.process_time() - c0)


MODELS = [("mlp_b64", "mlp", 64), ("mlp_b512", "mlp", 512), ("cnn_b64", "cnn", 64), ("cnn_b512", "cnn", 512),
          ("resnet18_b32", "resnet18", 32), ("gpt2_b4_t64", "gpt2", 4)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--models", default=",".join(m[0] for m in MODELS), help="comma-separated names")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    want = a.models.split(",")
    for name, kind, batch in MODELS:
        if name in want:
            wall, cpu = throughput(kind, batch, a.seconds)
            print(f"TORCH name={name} value={wall:.1f} cpu={cpu:.1f}", flush=True)


if __name__ == "__main__":
    main()
