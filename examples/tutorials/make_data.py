#!/usr/bin/python3
"""make_data.py OUT [N] - the data of tutorials 03, 09 and 24, made from the first N (default
10000) Fashion-MNIST training images (Debian's dataset-fashion-mnist) with numpy and PIL
(Debian's /usr/bin/python3 has both):
   OUT/fashion/<class>/<i>.jpg          a JPEG tree, one folder per class (03_histogram)
   OUT/fashion.zip                      the same files in a ZIP, deflated (03_histogram --zip)
   OUT/shards/fashion-000000.tar ...    WebDataset shards of 1000 samples, <i>.jpg + <i>.cls
                                        (the label as ASCII), as WebDataset writes them (09, 24)
The JPEGs are grey, quality 90: decoding them is the loader's work in 09 and 24."""
import gzip, io, os, sys, tarfile, zipfile
import numpy as np
from PIL import Image

FASHION = '/usr/share/datasets/fashion-mnist'
CLASSES = ['tshirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot']

def idx(name):
    with gzip.open(os.path.join(FASHION, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)

def main():
    out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    images, labels = idx('train-images-idx3-ubyte.gz')[:n], idx('train-labels-idx1-ubyte.gz')[:n]
    jpegs = []
    for img in images:
        b = io.BytesIO()
        Image.fromarray(img, 'L').save(b, 'JPEG', quality=90)
        jpegs.append(b.getvalue())
    for c in CLASSES:
        os.makedirs(os.path.join(out, 'fashion', c), exist_ok=True)
    os.makedirs(os.path.join(out, 'shards'), exist_ok=True)
    with zipfile.ZipFile(os.path.join(out, 'fashion.zip'), 'w', zipfile.ZIP_DEFLATED) as z:
        for i, (data, label) in enumerate(zip(jpegs, labels)):
            name = 'fashion/%s/%05d.jpg' % (CLASSES[label], i)
            with open(os.path.join(out, name), 'wb') as f:
                f.write(data)
            z.writestr(name, data)
    for s in range(0, n, 1000):
        with tarfile.open(os.path.join(out, 'shards', 'fashion-%06d.tar' % (s // 1000)), 'w', format=tarfile.USTAR_FORMAT) as t:
            for i in range(s, min(s + 1000, n)):
                for ext, data in (('jpg', jpegs[i]), ('cls', str(int(labels[i])).encode())):
                    ti = tarfile.TarInfo('%06d.%s' % (i, ext))
                    ti.size = len(data)
                    t.addfile(ti, io.BytesIO(data))
    print('%d images: %s/fashion/<class>/*.jpg, %s/fashion.zip, %s/shards/fashion-{000000..%06d}.tar'
          % (n, out, out, out, (n - 1) // 1000))

main()
