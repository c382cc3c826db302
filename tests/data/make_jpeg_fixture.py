#!/usr/bin/python3
# Makes tests/data/rgb_8x8.jpg for test_data.c with Pillow (run once; committed so the tests
# need no Python): pixel (x, y) channel k = 40 + 10 x + 12 y + 30 k, quality 100.
# (stb_image_write's JPEG writer trips UBSan, so the test does not make it itself.)
#   /usr/bin/python3 tests/data/make_jpeg_fixture.py
import os
from PIL import Image

img = Image.new('RGB', (8, 8))
img.putdata([tuple(40 + 10 * x + 12 * y + 30 * k for k in range(3)) for y in range(8) for x in range(8)])
img.save(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'rgb_8x8.jpg'), quality=100)
