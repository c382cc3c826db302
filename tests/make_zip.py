#!/usr/bin/python3
"""make_zip.py OUTDIR - the ZIP files tests/test_zip.c reads, made by Python's zipfile:
   plain.zip   a.txt (stored), dir/b.bin (deflated), empty (stored, 0 bytes), dir/ (a folder)
   zip64.zip   the same members with zip64 extra fields and a zip64 end record (zipfile
               writes those past its limits; the limits are lowered here to force them)
Member contents: a.txt = b'hello zip\\n'; dir/b.bin = bytes((i * 7 + i // 256) & 255 for i in
range(10000)); empty = b''."""
import os, sys, zipfile

def members(z):
    z.writestr(zipfile.ZipInfo('a.txt'), b'hello zip\n', compress_type=zipfile.ZIP_STORED)
    z.writestr('dir/', b'')
    z.writestr('dir/b.bin', bytes((i * 7 + i // 256) & 255 for i in range(10000)), compress_type=zipfile.ZIP_DEFLATED)
    z.writestr('empty', b'', compress_type=zipfile.ZIP_STORED)

out = sys.argv[1]
with zipfile.ZipFile(os.path.join(out, 'plain.zip'), 'w') as z:
    members(z)
zipfile.ZIP64_LIMIT = 4            # every size and offset past this gets a zip64 field
zipfile.ZIP_FILECOUNT_LIMIT = 1    # and the end record is zip64's
with zipfile.ZipFile(os.path.join(out, 'zip64.zip'), 'w') as z:
    members(z)
