#!/usr/bin/python3
# Makes the PyTorch fixtures tests/test_layers.c compares against (run once; the small .npy
# files under tests/data/layers/ are committed so the tests need no Python):
#   apt-get install python3-torch   # Debian's torch 1.13
#   /usr/bin/python3 tests/data/make_layer_fixtures.py
# Every case draws its inputs and weights here, runs the torch layer in float64, and saves
# the float32 inputs, the outputs, and the gradients of L = sum(out * w) for a saved w.
# torch runs on the float32 values widened to float64, so the only differences from sdl are
# sdl's float32 rounding.
import os
import numpy as np
import torch
import torch.nn.functional as F

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'layers')
os.makedirs(here, exist_ok=True)
torch.manual_seed(16)
torch.set_default_dtype(torch.float64)


def save(name, t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else t
    if a.dtype.kind == 'f':
        a = a.astype(np.float32)
    np.save(os.path.join(here, name + '.npy'), a)


def leaf(shape, lo=-1.0, hi=1.0):
    """uniform float32 values, as a float64 leaf that wants a gradient"""
    a = (torch.rand(shape) * (hi - lo) + lo).float().double()
    return a.requires_grad_(True)


def weigh(name, out):
    """saves out and a random w, backpropagates sum(out * w)"""
    w = leaf(out.shape).detach()
    save(name + '_out', out)
    save(name + '_w', w)
    (out * w).sum().backward()


# ---- GELU, exact and tanh, from deep in the negative tail to positive
x = torch.linspace(-10.0, 5.0, 301).float().double().requires_grad_(True)
save('gelu_x', x)
weigh('gelu', F.gelu(x))
save('gelu_dx', x.grad)
x.grad = None
weigh('gelu_tanh', F.gelu(x, approximate='tanh'))
save('gelu_tanh_dx', x.grad)

# ---- pooling with ceil_mode: odd sizes, so the last window hangs over the edge
for name, fn, k, s, p, shape in [('maxpool_ceil_a', F.max_pool2d, 3, 2, 1, (2, 3, 8, 7)),
                                 ('maxpool_ceil_b', F.max_pool2d, 2, 2, 0, (1, 2, 5, 7)),
                                 ('avgpool_ceil_a', F.avg_pool2d, 3, 2, 1, (2, 3, 8, 7)),
                                 ('avgpool_ceil_b', F.avg_pool2d, 2, 2, 0, (1, 2, 5, 7)),
                                 ('avgpool_ceil_c', F.avg_pool2d, 3, 3, 1, (1, 1, 7, 6))]:
    x = leaf(shape)
    save(name + '_x', x)
    weigh(name, fn(x, k, s, p, ceil_mode=True))
    save(name + '_dx', x.grad)

# ---- RNN, LSTM, GRU: 2 layers, initial state in, outputs and final states out; the loss
# sum(out * w_out) + sum(h_n * w_hn) (+ sum(c_n * w_cn) for the LSTM)
for name, cls, batch_first, bias, layers, with_state in [('rnn', torch.nn.RNN, False, True, 2, True),
                                                         ('lstm', torch.nn.LSTM, True, True, 2, True),
                                                         ('gru', torch.nn.GRU, False, True, 2, True),
                                                         ('lstm1', torch.nn.LSTM, False, False, 1, False),
                                                         ('gru_bf', torch.nn.GRU, True, True, 3, False)]:
    I, H, T, B = 3, 4, 5, 2
    net = cls(I, H, num_layers=layers, bias=bias, batch_first=batch_first)
    for pname, p in net.named_parameters():
        with torch.no_grad():
            p.copy_(p.float().double())
        save(name + '_' + pname, p)
    x = leaf((B, T, I) if batch_first else (T, B, I))
    save(name + '_x', x)
    h0 = leaf((layers, B, H)) if with_state else None
    c0 = leaf((layers, B, H)) if with_state and cls is torch.nn.LSTM else None
    if h0 is not None:
        save(name + '_h0', h0)
    if c0 is not None:
        save(name + '_c0', c0)
    if cls is torch.nn.LSTM:
        out, (hn, cn) = net(x, None if h0 is None else (h0, c0))
    else:
        out, hn = net(x, h0)
        cn = None
    loss = 0
    for suffix, t in [('out', out), ('hn', hn), ('cn', cn)]:
        if t is None:
            continue
        w = leaf(t.shape).detach()
        save(name + '_' + suffix, t)
        save(name + '_w_' + suffix, w)
        loss = loss + (t * w).sum()
    loss.backward()
    save(name + '_dx', x.grad)
    if h0 is not None:
        save(name + '_dh0', h0.grad)
    if c0 is not None:
        save(name + '_dc0', c0.grad)
    for pname, p in net.named_parameters():
        save(name + '_d_' + pname, p.grad)
