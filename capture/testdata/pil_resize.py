#!/usr/bin/python3
"""Reference outputs of Pillow's BILINEAR resize for normalize_test.go.

Run offline with Debian's python3-pil (9.4.0): /usr/bin/python3 pil_resize.py
It writes pil/<name>_<W>x<H>_to_<w>x<h>.rgb (packed RGB bytes). The source
images are procedural, computed identically by pattern() in normalize_test.go.
"""
import os
from PIL import Image

def pattern(kind, w, h):
    buf = bytearray(w * h * 3)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                if kind == "noise":
                    v = ((x * 73856093) ^ (y * 19349663) ^ (c * 83492791)) & 0xFFFFFFFF
                    v = (v >> 7) & 255
                else:  # "smooth": gradients plus a few hard edges
                    if c == 0:
                        v = (x * 255) // max(w - 1, 1)
                    elif c == 1:
                        v = (y * 255) // max(h - 1, 1)
                    else:
                        v = 255 if ((x // 37) + (y // 23)) % 2 == 0 else 0
                buf[(y * w + x) * 3 + c] = v
    return Image.frombytes("RGB", (w, h), bytes(buf))

CASES = [
    ("noise", 97, 61, [(112, 112), (23, 17), (97, 30), (40, 61), (1, 1), (200, 5)]),
    ("smooth", 640, 480, [(224, 224), (64, 48)]),
    ("noise", 640, 480, [(224, 224)]),
    ("smooth", 1280, 720, [(224, 224)]),
]

here = os.path.dirname(os.path.abspath(__file__))
for kind, w, h, outs in CASES:
    img = pattern(kind, w, h)
    for ow, oh in outs:
        out = img.resize((ow, oh), Image.BILINEAR)
        name = "%s_%dx%d_to_%dx%d.rgb" % (kind, w, h, ow, oh)
        with open(os.path.join(here, "pil", name), "wb") as f:
            f.write(out.tobytes())
