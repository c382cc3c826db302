"""bench_torch_cuda.py - PyTorch on the GPU, the reference for bench/bench_cuda.sh: the same
models as sdl's, trained on one fixed random batch that lives on the GPU.

  mlp_b64           MLP 784-256-128-10, batch 64, f32 (TF32 off), SGD momentum 0.9
  cnn_b64           conv 32, conv 64, max-pool, fc 128, fc 10, batch 64, f32 (TF32 off)
  resnet18_b256     ResNet-18 for CIFAR (examples/resnet18.c), batch 256, TF32, channels-last,
                    cudnn.benchmark, SGD momentum 0.9, weight decay 5e-4
  gpt2_b16_eager    GPT-2 124M (tied head; examples/gpt2.c), B 16, T 1024, bf16 autocast,
                    TF32, flash attention (scaled_dot_product_attention), fused AdamW
  gpt2_b16_compile  the same under torch.compile

Run:  python3 bench/bench_torch_cuda.py [--only resnet18_b256,gpt2_b16_eager] [--steps 20]
Prints one line per model:  TORCH name=<name> value=<rate> unit=<samples/s|tokens/s> loss=<last>
(value=0 with error=... when a model could not run)."""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """torchvision's resnet18 for 32x32 images: 3x3 stem, no max-pool, fc 10 (11,173,962 params)"""

    def __init__(self, width=64, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, c_in = [], width
        for s in range(4):
            c_out = width << s
            stages.append(nn.Sequential(BasicBlock(c_in, c_out, 2 if s else 1), BasicBlock(c_out, c_out, 1)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Block(nn.Module):
    def __init__(self, C, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def attn(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    """nanoGPT's GPT-2: 124,439,808 parameters at V 50257, T 1024, L 12, NH 12, C 768 (tied head)"""

    def __init__(self, V=50257, T=1024, L=12, n_head=12, C=768):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList([Block(C, n_head) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if "proj" in name else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied LM head
        return F.cross_entropy(logits.view(B * T, -1).float(), targets.view(B * T))


def timed(step, warmup, steps):
    """runs warmup steps, then times `steps` steps; returns (seconds, last loss)"""
    for _ in range(warmup):
        loss = step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    last = loss.item()  # waits for the GPU
    torch.cuda.synchronize()
    return time.perf_counter() - t0, last


def image_bench(name, make, shape, batch, steps, lr, wd, tf32, channels_last):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(1)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = make().cuda().to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    x = torch.randn(batch, *shape, device="cuda").contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    dt, loss = timed(step, 10, steps)
    print(f"TORCH name={name} value={steps * batch / dt:.1f} unit=samples/s loss={loss:.4f}", flush=True)


def gpt2_bench(name, B, T, steps, compile_it):
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(1)
    model = GPT2(T=T).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    fwd = torch.compile(model) if compile_it else model
    data = torch.randint(0, 50257, (B, T + 1), device="cuda")
    idx, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            loss = fwd(idx, targets)
        loss.backward()
        opt.step()
        return loss

    dt, loss = timed(step, 3 if compile_it else 2, steps)
    print(f"TORCH name={name} value={steps * B * T / dt:.1f} unit=tokens/s loss={loss:.4f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated names (default: all)")
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: 200 small models, 30 ResNet, 10 GPT-2)")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_torch_cuda: no CUDA device for torch", flush=True)
        return 1
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}", flush=True)
    runs = {
        "mlp_b64": lambda s: image_bench("mlp_b64", mlp, (1, 28, 28), 64, s or 300, 0.01, 0.0, False, False),
        "cnn_b64": lambda s: image_bench("cnn_b64", cnn, (1, 28, 28), 64, s or 300, 0.01, 0.0, False, False),
        "resnet18_b256": lambda s: image_bench("resnet18_b256", ResNet18, (3, 32, 32), 256, s or 30, 0.1, 5e-4, True, True),
        "gpt2_b16_eager": lambda s: gpt2_bench("gpt2_b16_eager", 16, 1024, s or 10, False),
        "gpt2_b16_compile": lambda s: gpt2_bench("gpt2_b16_compile", 16, 1024, s or 10, True),
    }
    only = [n for n in a.only.split(",") if n]
    for name, run in runs.items():
        if only and name not in only:
            continue
        try:
            run(a.steps)
        except Exception as e:  # one model failing (OOM, no compiler) must not stop the others
            msg = str(e).splitlines()[0][:120].replace(" ", "_") if str(e) else type(e).__name__
            print(f"TORCH name={name} value=0 unit=- error={msg}", flush=True)
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
