#!/usr/bin/python3
"""make_jpeg_shards.py OUTDIR - WebDataset tar shards of synthetic JPEGs for make bench-data:
   OUTDIR/jpeg64-{000000..000003}.tar    4 x 1024 images of 64 x 64
   OUTDIR/jpeg224-{000000..000003}.tar   4 x 128 images of 224 x 224
   OUTDIR/jpeg32-{000000..000003}.tar    4 x 1024 images of 32 x 32 (ResNet-18's CIFAR input)
Each sample is key.jpg (RGB, PIL quality 90) and key.cls (a label 0..9). The images are smooth
random colour fields plus noise, so they compress like photographs, not like flat colour."""
import io, os, sys, tarfile
import numpy as np
from PIL import Image

def image(rng, size):
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3))
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.5, 6, 2).tolist() + [rng.uniform(0, 6.3)]
            img[:, :, c] += np.sin(2 * np.pi * (fx * x + fy * y) + ph)
    img = (img - img.min()) / (np.ptp(img) + 1e-9) * 220 + rng.normal(0, 8, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))

def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    for size, per in ((64, 1024), (224, 128), (32, 1024)):
        for s in range(4):
            path = os.path.join(out, 'jpeg%d-%06d.tar' % (size, s))
            with tarfile.open(path, 'w', format=tarfile.USTAR_FORMAT) as t:
                for i in range(per):
                    b = io.BytesIO()
                    image(rng, size).save(b, 'JPEG', quality=90)
                    key = 's%02d_%05d' % (s, i)
                    for ext, data in (('cls', str(int(rng.integers(10))).encode()), ('jpg', b.getvalue())):
                        ti = tarfile.TarInfo(key + '.' + ext)
                        ti.size = len(data)
                        t.addfile(ti, io.BytesIO(data))

main()
