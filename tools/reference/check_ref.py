#!/usr/bin/python3
"""Checks pali3_ref.py's pieces against plain numpy/float64 formulas.

    /usr/bin/python3 tools/reference/check_ref.py

The reference is made of torch.nn pieces; this re-derives each piece from
its textbook formula with loops and numpy (no torch.nn), so that a mistake
in how the pieces are wired (a transposed weight, a missing scale, the
wrong bucket, the wrong bicubic kernel) shows up before any golden file is
trusted. Exits non-zero on the first disagreement.
"""

import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pali3_ref  # noqa: E402

torch.set_grad_enabled(False)
rng = np.random.default_rng(7)


def close(name, a, b, tol=1e-10):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    err = np.abs(a - b).max() / max(1.0, np.abs(b).max())
    print("%-44s max rel err %.3g" % (name, err))
    if not err <= tol:
        raise SystemExit("FAIL: %s" % name)


def randomize(module):
    for p in module.parameters():
        p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape))))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_attention(x, kv, wq, wk, wv, wo, h, dk, bias, scale, bq=None, bk=None, bv=None, bo=None):
    z = lambda v, n: v if v is not None else np.zeros(n)  # noqa: E731
    q = x @ wq.T + z(bq, wq.shape[0])
    k = kv @ wk.T + z(bk, wk.shape[0])
    v = kv @ wv.T + z(bv, wv.shape[0])
    out = np.zeros((x.shape[0], h * dk))
    for hh in range(h):
        sl = slice(hh * dk, (hh + 1) * dk)
        s = q[:, sl] @ k[:, sl].T * scale
        if bias is not None:
            s = s + bias[hh]
        out[:, sl] = softmax(s) @ v[:, sl]
    return out @ wo.T + z(bo, wo.shape[0])


def bucket_scalar(rel, bidirectional, nb=32, md=128):
    """T5's bucket, written out; the log ratio in float32 as HF computes it."""
    ret = 0
    if bidirectional:
        nb //= 2
        if rel > 0:
            ret += nb
        rel = abs(rel)
    else:
        rel = max(-rel, 0)
    exact = nb // 2
    if rel < exact:
        return ret + rel
    f = np.float32
    v = f(np.log(f(rel) / f(exact))) / f(math.log(md / exact)) * f(nb - exact)
    return ret + min(exact + int(v), nb - 1)


def cubic_weights(t, a=-0.75):
    def k(x):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        if x < 2:
            return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
        return 0.0
    return [k(t + 1), k(t), k(1 - t), k(2 - t)]


def bicubic_1d_matrix(n_in, n_out):
    """Keys cubic (a=-0.75), align_corners=False, border taps clamped."""
    m = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for o in range(n_out):
        src = (o + 0.5) * scale - 0.5
        i0 = math.floor(src)
        w = cubic_weights(src - i0)
        for j, wj in zip(range(i0 - 1, i0 + 3), w):
            m[o, min(max(j, 0), n_in - 1)] += wj
    return m


def main():
    # 1. relative position buckets against the scalar formula.
    for bidir in (True, False):
        rel = torch.arange(-400, 401)
        got = pali3_ref.relative_position_bucket(rel, bidir, 32, 128).numpy()
        want = [bucket_scalar(int(r), bidir) for r in rel]
        bad = [(int(r), g, w) for r, g, w in zip(rel, got, want) if g != w]
        print("relative buckets (bidirectional=%s): %d mismatches" % (bidir, len(bad)))
        if bad:
            raise SystemExit("FAIL: buckets %s" % bad[:5])
    # a few values by hand (HF T5, 32 buckets, max distance 128)
    hand = {(0, True): 0, (1, True): 17, (-1, True): 1, (8, True): 24, (-200, True): 15,
            (0, False): 0, (-1, False): 1, (1, False): 0, (-16, False): 16, (-32, False): 21, (-500, False): 31}
    for (r, b), want in hand.items():
        got = int(pali3_ref.relative_position_bucket(torch.tensor([r]), b, 32, 128)[0])
        if got != want:
            raise SystemExit("FAIL: bucket(%d, %s) = %d, want %d" % (r, b, got, want))
    print("relative buckets: hand values ok")

    # 2. bicubic position interpolation against the separable formula.
    vc = dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
              image_size=32, patch_size=8, layer_norm_eps=1e-6, num_channels=3)
    vis = pali3_ref.SiglipVision(vc)
    randomize(vis)
    w = vis.position_embedding.weight.numpy().reshape(4, 4, 8)
    for size in (48, 24, 56, 80):
        n = size // 8
        got = vis.positions(size, size).numpy().reshape(n, n, 8)
        m = bicubic_1d_matrix(4, n)
        want = np.einsum("yi,xj,ijd->yxd", m, m, w)
        close("bicubic positions %dx%d -> %dx%d" % (4, 4, n, n), got, want)
    close("positions at the model size are the table", vis.positions(32, 32).numpy(), w.reshape(16, 8), 0)

    # 3. one SigLIP layer and the patch embedding against numpy.
    layer = vis.layers[0]
    x = rng.normal(0, 1, (16, 8))
    p = {k: v.numpy() for k, v in layer.state_dict().items()}

    def ln(x, wt, b, eps=1e-6):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * wt + b

    h = ln(x, p["layer_norm1.weight"], p["layer_norm1.bias"])
    a = np_attention(h, h, p["self_attn.q_proj.lin.weight"], p["self_attn.k_proj.lin.weight"],
                     p["self_attn.v_proj.lin.weight"], p["self_attn.out_proj.lin.weight"], 2, 4, None, 4 ** -0.5,
                     p["self_attn.q_proj.lin.bias"], p["self_attn.k_proj.lin.bias"],
                     p["self_attn.v_proj.lin.bias"], p["self_attn.out_proj.lin.bias"])
    y = x + a
    h = ln(y, p["layer_norm2.weight"], p["layer_norm2.bias"])
    y = y + gelu_tanh(h @ p["fc1.lin.weight"].T + p["fc1.lin.bias"]) @ p["fc2.lin.weight"].T + p["fc2.lin.bias"]
    close("SigLIP encoder layer", layer(torch.from_numpy(x)).numpy(), y)

    pix = rng.uniform(-1, 1, (3, 32, 32))
    cw, cb = vis.patch_embedding.weight.numpy(), vis.patch_embedding.bias.numpy()
    want = np.zeros((16, 8))
    for gy in range(4):
        for gx in range(4):
            patch = pix[:, gy * 8:(gy + 1) * 8, gx * 8:(gx + 1) * 8]
            want[gy * 4 + gx] = np.tensordot(cw, patch, axes=([1, 2, 3], [0, 1, 2])) + cb
    got = vis.patch_embedding(torch.from_numpy(pix)[None]).flatten(2).transpose(1, 2)[0].numpy()
    close("patch embedding (conv) row-major patches", got, want)

    # 4. T5 blocks against numpy: encoder (bidirectional bias) and decoder.
    for proj, act in (("gated-gelu", gelu_tanh), ("gated-silu", lambda v: v / (1 + np.exp(-v)))):
        tc = dict(d_model=12, d_kv=5, d_ff=10, num_heads=3, relative_attention_num_buckets=32,
                  relative_attention_max_distance=128, layer_norm_epsilon=1e-6, feed_forward_proj=proj)
        enc_b = pali3_ref.T5Block(tc, False, True)
        dec_b = pali3_ref.T5Block(tc, True, True)
        randomize(enc_b)
        randomize(dec_b)
        nE, nD = 150, 7  # distances beyond max_distance reach the last bucket
        x = rng.normal(0, 1, (nE, 12))

        def rms(v, wt):
            return wt * v / np.sqrt((v ** 2).mean(-1, keepdims=True) + 1e-6)

        def table_bias(table, nq, nk, bidir, causal):
            b = np.zeros((3, nq, nk))
            for i in range(nq):
                for j in range(nk):
                    b[:, i, j] = table[bucket_scalar(j - i, bidir)]
                    if causal and j > i:
                        b[:, i, j] = -np.inf
            return b

        def ff(blk, v):
            q = {k: t.numpy() for k, t in blk.ff.state_dict().items()}
            return (act(v @ q["wi_0.lin.weight"].T) * (v @ q["wi_1.lin.weight"].T)) @ q["wo.lin.weight"].T

        def att(mod, v, kv, bias):
            q = {k: t.numpy() for k, t in mod.state_dict().items()}
            return np_attention(v, kv, q["q.lin.weight"], q["k.lin.weight"], q["v.lin.weight"], q["o.lin.weight"],
                                3, 5, bias, 1.0)

        tab = enc_b.attn.relative_attention_bias.weight.numpy()
        bias = table_bias(tab, nE, nE, True, False)
        h = rms(x, enc_b.ln0.weight.numpy())
        y = x + att(enc_b.attn, h, h, bias)
        y = y + ff(enc_b, rms(y, enc_b.ln_ff.weight.numpy()))
        got = enc_b(torch.from_numpy(x), enc_b.attn.position_bias(nE, nE)).numpy()
        close("T5 encoder block (%s)" % proj, got, y)

        e = rng.normal(0, 1, (nE, 12))
        xd = rng.normal(0, 1, (nD, 12))
        tab = dec_b.attn.relative_attention_bias.weight.numpy()
        bias = table_bias(tab, nD, nD, False, True)
        h = rms(xd, dec_b.ln0.weight.numpy())
        y = xd + att(dec_b.attn, h, h, bias)
        y = y + att(dec_b.xattn, rms(y, dec_b.ln_x.weight.numpy()), e, None)
        y = y + ff(dec_b, rms(y, dec_b.ln_ff.weight.numpy()))
        tb = dec_b.attn.position_bias(nD, nD) + torch.triu(torch.full((nD, nD), float("-inf"), dtype=torch.float64), 1)
        got = dec_b(torch.from_numpy(xd), tb, torch.from_numpy(e)).numpy()
        close("T5 decoder block (%s)" % proj, got, y)

    # 5. tied head: decoder output scaled by d_model**-0.5 before the embedding.
    tc = dict(d_model=16, d_kv=4, d_ff=8, num_heads=2, num_layers=1, num_decoder_layers=1, vocab_size=11,
              relative_attention_num_buckets=32, relative_attention_max_distance=128, layer_norm_epsilon=1e-6,
              feed_forward_proj="gated-silu", tie_word_embeddings=True)
    t5 = pali3_ref.T5(tc)
    randomize(t5)
    enc = torch.from_numpy(rng.normal(0, 1, (5, 16)))
    got = t5.decode_logits(enc, [0, 3, 4]).numpy()
    xs = t5.shared(torch.tensor([0, 3, 4]))
    n = 3
    tb = t5.dec[0].attn.position_bias(n, n) + torch.triu(torch.full((n, n), float("-inf"), dtype=torch.float64), 1)
    hid = t5.dec_norm(t5.dec[0](xs, tb, enc)).numpy()
    close("tied head scale d_model**-0.5", got, (hid * 16 ** -0.5) @ t5.shared.weight.numpy().T)

    # 6. ggml block formats on hand-made blocks.
    blk = np.arange(32, dtype=np.float32) - 10.0  # amax 21 at the end, max +21
    q8 = pali3_ref.q8_0_roundtrip(blk)
    d = np.float16(np.float32(21) / 127)
    close("q8_0 round trip", q8, np.round(blk / (np.float32(21) / 127)) * np.float64(d), 0)
    q4 = pali3_ref.q4_0_roundtrip(blk)
    d4 = np.float32(21) / -8
    want = (np.minimum(15, np.trunc(blk * (1 / d4) + 8.5)) - 8) * np.float64(np.float16(d4))
    close("q4_0 round trip", q4, want, 0)
    print("all reference checks passed")


if __name__ == "__main__":
    main()
