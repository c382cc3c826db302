#!/usr/bin/python3
"""bench_data_torch.py SHARD_GLOB SIZE WORKERS [EPOCHS] - PyTorch's DataLoader + PIL on the
same JPEG tar shards as bench_data.c, the same work per image: the tar read in the workers
(shards split by worker, an IterableDataset as WebDataset does), PIL decode, the same
augmentations (torchvision's algorithms written with PIL: there is no torchvision here),
to a float tensor, normalise, batch 64. Prints images/s over EPOCHS epochs after one warm-up."""
import glob, io, math, random, sys, tarfile, time
import numpy as np
import torch
from PIL import Image

class Shards(torch.utils.data.IterableDataset):
    def __init__(self, paths, size):
        self.paths, self.size, self.epoch = paths, size, 0
    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        rng = random.Random(self.epoch * 1000 + wid)
        paths = self.paths[wid::nw]
        mean = torch.tensor([0.5, 0.5, 0.5]).view(3, 1, 1)
        std = torch.tensor([0.25, 0.25, 0.25]).view(3, 1, 1)
        for p in paths:
            with tarfile.open(p) as t:
                sample = {}
                for m in t:
                    key, ext = m.name.split('.', 1)
                    sample[ext] = t.extractfile(m).read()
                    if 'jpg' in sample and 'cls' in sample:
                        img = Image.open(io.BytesIO(sample['jpg'])).convert('RGB')
                        img = self.augment(img, rng)
                        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
                        yield (x - mean) / std, int(sample['cls'])
                        sample = {}
    def augment(self, img, rng):
        s = self.size
        if s == 64:  # RandomCrop(64, padding=4)
            pad = Image.new('RGB', (s + 8, s + 8))
            pad.paste(img, (4, 4))
            i, j = rng.randint(0, 8), rng.randint(0, 8)
            img = pad.crop((j, i, j + s, i + s))
        else:  # RandomResizedCrop(224): torchvision's get_params, then PIL bilinear
            W, H = img.size
            area = W * H
            for _ in range(10):
                ta = area * rng.uniform(0.08, 1.0)
                ar = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
                w, h = int(round(math.sqrt(ta * ar))), int(round(math.sqrt(ta / ar)))
                if 0 < w <= W and 0 < h <= H:
                    i, j = rng.randint(0, H - h), rng.randint(0, W - w)
                    break
            else:
                i, j, h, w = 0, 0, H, W
            img = img.resize((s, s), Image.BILINEAR, box=(j, i, j + w, i + h))
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return img

def main():
    paths, size, workers = sorted(glob.glob(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    torch.set_num_threads(1)
    ds = Shards(paths, size)
    dl = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers, persistent_workers=False)
    x, y = next(iter(dl))
    assert x.shape[1:] == (3, size, size) and 0 <= int(y.min()) and int(y.max()) <= 9
    for _ in dl:  # warm-up epoch
        pass
    n, t0 = 0, time.time()
    for e in range(epochs):
        ds.epoch = e + 1
        for x, y in dl:
            n += x.shape[0]
    dt = time.time() - t0
    print('torch jpeg%d workers %d: %d images in %.3f s: %.1f images/s' % (size, workers, n, dt, n / dt))

main()
