#!/usr/bin/python3
# Makes the small .npy/.npz fixtures test_data.c reads, with numpy (run once; the files are
# committed so the tests need no Python). Element i of every array is a formula of i that
# test_data.c recomputes: f(i) = (i * 7 % 23) - 11 (+ 0.25 for floats).
#   /usr/bin/python3 tests/data/make_npy_fixtures.py
import os
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))

def arr(shape, dtype):
    n = int(np.prod(shape))
    v = np.array([(i * 7 % 23) - 11 for i in range(n)], dtype=np.float64)
    if np.dtype(dtype).kind == 'f':
        v = v + 0.25
    if np.dtype(dtype).kind == 'u':
        v = v + 11
    return v.astype(dtype).reshape(shape)

def save(name, a):
    np.save(os.path.join(here, name), a)

save('f32_2x3.npy', arr((2, 3), np.float32))
save('f64_5.npy', arr((5,), np.float64))
save('u8_4x5x2.npy', arr((4, 5, 2), np.uint8))
save('i32_7.npy', arr((7,), np.int32))
save('i64_3x2.npy', arr((3, 2), np.int64))
save('f32_scalar.npy', arr((), np.float32))
save('f32_fortran.npy', np.asfortranarray(arr((3, 4), np.float32)))
save('f32_bigendian.npy', arr((3,), np.dtype('>f4')))
np.savez(os.path.join(here, 'stored.npz'), x=arr((2, 3), np.float32), labels=arr((6,), np.int64))
np.savez_compressed(os.path.join(here, 'deflated.npz'), x=arr((20, 3), np.float32), img=arr((2, 3, 4), np.uint8))
