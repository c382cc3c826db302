"""bench_torch.py - PyTorch (CPU) training throughput for the models bench_cpu.c times.
Run with Debian's python3: /usr/bin/python3 bench/bench_torch.py --threads 2
Prints lines  TORCH name=<mlp_b64|mlp_b512|cnn_b64|cnn_b512> value=<samples/s>"""
import argparse
import time

import torch
import torch.nn as nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))


def throughput(make, batch, secs):
    torch.manual_seed(1)
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()
    steps, s, t0 = 0, 0, 0.0
    while True:
        if s == 2:
            t0 = time.perf_counter()  # two warm-up steps
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if s >= 2:
            steps += 1
        s += 1
        if s >= 5 and time.perf_counter() - t0 > secs:
            break
    return steps * batch / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for name, make, batch in [("mlp_b64", mlp, 64), ("mlp_b512", mlp, 512), ("cnn_b64", cnn, 64), ("cnn_b512", cnn, 512)]:
        print(f"TORCH name={name} value={throughput(make, batch, a.seconds):.1f}", flush=True)


if __name__ == "__main__":
    main()
