# convert.py - part of sdl's CUDA emulator - public domain or MIT (see sdl.h)
#
#   python3 convert.py IN.cu OUT.cpp [ALLOWLIST]
#
# Copies a CUDA source and rewrites every kernel launch
#     kernel<<<grid, block, shmem, stream>>>(args);
# as
#     emu_launch(dim3(grid), dim3(block), shmem, "kernel", emu_args(kernel)(args));
# emu_args converts the arguments to the kernel's parameter types and copies them into the
# closure it returns, so a launch recorded by a stream capture runs later with the values of
# its launch. The kernel must not be a template (or name its template arguments).
# so g++ can build it against inc/cuda_runtime.h. Nothing else changes and no line is added
# or removed (a #line directive keeps compiler messages pointing at IN). Any python3 >= 3.4,
# standard library only.
# For the race checks (README, inc/cuda_runtime.h's >>emu-race): after each static
#     __shared__ T a[N], b[M][K];
# it writes EMU_SHARED_NAME(a) EMU_SHARED_NAME(b) on the same line (the arrays' names for the
# messages; nothing in a build without -DEMU_RACECHECK), and with ALLOWLIST it appends
# "fun:*name*" for every __global__ and __device__ function of IN to that file (clang's
# -fsanitize-coverage-allowlist: only those functions get their loads and stores checked).
import re
import sys

LAUNCH = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*<<<')


def split_top(text):
    """text split at the commas outside (), [] and {}"""
    parts, depth, cur = [], 0, ''
    for ch in text:
        if ch in '([{':
            depth += 1
        elif ch in ')]}':
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def convert(src, name):
    out, i, count = [], 0, 0
    while True:
        m = LAUNCH.search(src, i)
        if not m:
            out.append(src[i:])
            break
        line = src.count('\n', 0, m.start()) + 1
        close = src.find('>>>', m.end())
        if close < 0:
            raise ValueError('%s:%d: <<< without >>>' % (name, line))
        cfg = split_top(src[m.end():close])
        k = close + 3
        while k < len(src) and src[k] in ' \t':
            k += 1
        if not 2 <= len(cfg) <= 4 or k >= len(src) or src[k] != '(':
            raise ValueError('%s:%d: cannot read the launch of %s' % (name, line, m.group(1)))
        start, depth = k + 1, 1
        k += 1
        while depth:
            if k >= len(src):
                raise ValueError('%s:%d: unbalanced ( in the launch of %s' % (name, line, m.group(1)))
            depth += {'(': 1, ')': -1}.get(src[k], 0)
            k += 1
        kernel, args = m.group(1), src[start:k - 1]
        shmem = cfg[2] if len(cfg) > 2 else '0'
        out.append(src[i:m.start()])
        out.append('emu_launch(dim3(%s), dim3(%s), (size_t)(%s), "%s", emu_args(%s)(%s))'
                   % (cfg[0], cfg[1], shmem, kernel, kernel, args))
        i, count = k, count + 1
    return ''.join(out), count


# >>emu-race
SHARED = re.compile(r'__shared__\s+[A-Za-z_][\w:]*\s+([A-Za-z_]\w*\s*\[[^;{}()]*\])\s*;')
DEVICE_FN = re.compile(r'__(?:global|device)__\b[^;{}=()]*?\b([A-Za-z_]\w*)\s*\(')


def name_shared(text):
    """EMU_SHARED_NAME(a) after each static __shared__ array declaration"""
    def one(m):
        names = re.findall(r'(?:^|,)\s*([A-Za-z_]\w*)\s*\[', m.group(1))
        return m.group(0) + ''.join(' EMU_SHARED_NAME(%s)' % n for n in names)
    return SHARED.sub(one, text)


def device_functions(text):
    return sorted(set(DEVICE_FN.findall(text)))


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write('usage: python3 convert.py IN.cu OUT.cpp [ALLOWLIST]\n')
        return 2
    with open(argv[1], encoding='utf-8') as f:
        src = f.read()
    try:
        text, count = convert(src, argv[1])
    except ValueError as e:
        sys.stderr.write('convert.py: %s\n' % e)
        return 1
    text = name_shared(text)
    if len(argv) == 4:
        with open(argv[3], 'a', encoding='utf-8') as f:
            if f.tell() == 0:
                f.write('src:*\n')
            f.write(''.join('fun:*%s*\n' % n for n in device_functions(src)))
    with open(argv[2], 'w', encoding='utf-8') as f:
        f.write('#line 1 "%s"\n' % argv[1].replace('\\', '/'))
        f.write(text)
    sys.stderr.write('convert.py: %s: %d kernel launches rewritten\n' % (argv[1], count))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
