"""bench_torch.py - PyTorch (CPU) training throughput for the models bench_cpu.c times.
Run with Debian's python3: /usr/bin/python3 bench/bench_torch.py --threads 2
Prints lines  TORCH name=<mlp_b64|mlp_b512|cnn_b64|cnn_b512> value=<samples/s> cpu=<samples per CPU-second>"""
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

import torch  # noqa: E402  (after the thread variables)
import torch.nn as nn  # noqa: E402


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
    steps, s, t0, c0 = 0, 0, 0.0, 0.0
    while True:
        if s == 2:
            t0, c0 = time.perf_counter(), time.process_time()  # two warm-up steps
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if s >= 2:
            steps += 1
        s += 1
        if s >= 5 and time.perf_counter() - t0 > secs:
            break
    return steps * batch / (time.perf_counter() - t0), steps * batch / (time.process_time() - c0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for name, make, batch in [("mlp_b64", mlp, 64), ("mlp_b512", mlp, 512), ("cnn_b64", cnn, 64), ("cnn_b512", cnn, 512)]:
        wall, cpu = throughput(make, batch, a.seconds)
        print(f"TORCH name={name} value={wall:.1f} cpu={cpu:.1f}", flush=True)


if __name__ == "__main__":
    main()
