#!/usr/bin/python3
"""Makes the PyTorch fixtures of tests/test_load.c with Debian's python3-torch (1.13):

  torch_small.safetensors  a state_dict as PyTorch has it (BatchNorm's num_batches_tracked,
                           an I64 scalar, included), written as safetensors
  torch_small_x.npy        an input (2, 1, 8, 8)
  torch_small_y.npy        the net's eval-mode output for it (2, 3)

The safetensors format is written here by hand (Debian has no python3-safetensors): an
8-byte little-endian header length, the JSON header (padded with spaces to 8 bytes), then
each tensor's little-endian bytes at its data_offsets, as safetensors.torch.save_file does.
Run from the repository root:  /usr/bin/python3 tests/data/make_torch_state_dict.py
"""
import json
import struct

import numpy as np
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        return self.fc(x.flatten(1))


def save_safetensors(path, tensors):
    names = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k, t in tensors.items():
        a = t.detach().contiguous().numpy()
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.write(b"".join(blobs))


torch.manual_seed(0)
net = Net()
with torch.no_grad():  # training-mode batches: running stats and num_batches_tracked move
    for _ in range(3):
        net(torch.randn(8, 1, 8, 8) * 2 + 0.5)
net.eval()
x = torch.randn(2, 1, 8, 8)
with torch.no_grad():
    y = net(x)
sd = net.state_dict()
assert "bn1.num_batches_tracked" in sd and sd["bn1.num_batches_tracked"].dtype == torch.int64
save_safetensors("tests/data/torch_small.safetensors", sd)
np.save("tests/data/torch_small_x.npy", x.numpy().astype(np.float32))
np.save("tests/data/torch_small_y.npy", y.numpy().astype(np.float32))
print("wrote", ", ".join(f"{k} {tuple(v.shape)}" for k, v in sd.items()))
