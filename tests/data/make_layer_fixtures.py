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

# ---- GroupNorm: x (2, 6, 3, 4) in 3 groups, random affine
for name, shape, groups in [('gn', (2, 6, 3, 4), 3), ('gn1', (3, 4, 5), 1)]:
    gn = torch.nn.GroupNorm(groups, shape[1])
    with torch.no_grad():
        gn.weight.copy_(leaf(shape[1:2]).detach())
        gn.bias.copy_(leaf(shape[1:2]).detach())
    save(name + '_weight', gn.weight)
    save(name + '_bias', gn.bias)
    x = leaf(shape, -2.0, 3.0)
    save(name + '_x', x)
    weigh(name, gn(x))
    save(name + '_dx', x.grad)
    save(name + '_d_weight', gn.weight.grad)
    save(name + '_d_bias', gn.bias.grad)

# ---- MultiheadAttention: self-attention (batch_first) with a causal bool mask and a key
# padding mask; cross-attention (time-major) with a float mask, key = value
E, NH, B = 8, 2, 2
for name, batch_first, Tq, Tk, cross in [('mha_self', True, 5, 5, False), ('mha_cross', False, 3, 4, True)]:
    mha = torch.nn.MultiheadAttention(E, NH, batch_first=batch_first)
    with torch.no_grad():
        for p in mha.parameters():
            p.copy_((torch.rand(p.shape) - 0.5).float().double())
    for pname, p in mha.named_parameters():
        save(name + '_' + pname, p)
    q = leaf((B, Tq, E) if batch_first else (Tq, B, E))
    save(name + '_q', q)
    if cross:
        k = leaf((B, Tk, E) if batch_first else (Tk, B, E))
        save(name + '_k', k)
        am = leaf((Tq, Tk)).detach()
        save(name + '_am', am)
        out, _ = mha(q, k, k, attn_mask=am, need_weights=False)
    else:
        k = q
        kpm = torch.zeros(B, Tk, dtype=torch.bool)
        kpm[1, 3:] = True
        save(name + '_kpm', kpm.numpy().astype(np.uint8))
        causal = torch.triu(torch.ones(Tq, Tk, dtype=torch.bool), 1)
        out, _ = mha(q, q, q, key_padding_mask=kpm, attn_mask=causal, need_weights=False)
    weigh(name, out)
    save(name + '_dq', q.grad)
    if cross:
        save(name + '_dk', k.grad)
    for pname, p in mha.named_parameters():
        save(name + '_d_' + pname.replace('.', '_'), p.grad)

# ---- Conv2d: dilation + groups + separate strides/pads; depthwise 'same'; an even kernel
# 'same' (one more pad at the bottom/right); a dense conv with pad (0, 1) (sdl's fast op)
for name, shape, cout, k, kw in [('conv_dg', (2, 4, 7, 8), 6, (3, 3), dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)),
                                 ('conv_dw', (1, 3, 5, 6), 6, (3, 3), dict(padding='same', groups=3)),
                                 ('conv_same2', (1, 2, 5, 6), 3, (2, 4), dict(padding='same')),
                                 ('conv_asym', (2, 4, 6, 7), 5, (3, 3), dict(padding=(0, 1)))]:
    conv = torch.nn.Conv2d(shape[1], cout, k, **kw)
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(p.float().double())
    save(name + '_weight', conv.weight)
    save(name + '_bias', conv.bias)
    x = leaf(shape)
    save(name + '_x', x)
    weigh(name, conv(x))
    save(name + '_dx', x.grad)
    save(name + '_d_weight', conv.weight.grad)
    save(name + '_d_bias', conv.bias.grad)
