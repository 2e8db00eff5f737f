"""Independent float64 reference of the PaLI-3 model that palid runs.

This is a second implementation of the model, written from torch.nn pieces
(nn.Conv2d, nn.Embedding, nn.LayerNorm, nn.Linear, F.interpolate) and the
Hugging Face definitions of SigLIP and T5 v1.1, not from palid's Go code. It
reads the same Hugging Face style checkpoint directory that `palid convert`
reads (config.json, model.safetensors) and computes in float64.

It is used offline by make_golden.py to produce the golden files under
runtime/testdata/; `make test` never runs it.

Optionally (quant="f16", "q8_0", "q4_0") it simulates palid's quantized
model files: the weights that the converter quantizes are rounded through
ggml's Q8_0 / Q4_0 / F16 formats and, for Q8_0 and Q4_0 weights, each
token's activation row is rounded through Q8_0 before the product, as ggml
and neon.MatMul do. make_golden.py uses this only to make sure the golden
cases are not decided by differences that quantization could flip.
"""

import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DT = torch.float64

# ---------------------------------------------------------------------------
# safetensors, by hand

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def bf16_bits(a):
    """float32 array -> bfloat16 bit patterns (uint16), round to nearest even."""
    b = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype("<u2")


def bf16_round(a):
    """float32 array rounded through bfloat16."""
    return (bf16_bits(a).astype("<u4") << 16).view("<f4")


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """Writes {name: np.ndarray} as a safetensors file, little-endian F32 or BF16."""
    header = {}
    blobs = []
    off = 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype="<f4")
        if dtype == "BF16":
            b = bf16_bits(a).tobytes()
        elif dtype == "F32":
            b = a.tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Reads a safetensors file (F32, F16, BF16, F64) into {name: np.ndarray}."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b : base + e]
        if info["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype("<u4") << 16).view("<f4")
        else:
            a = np.frombuffer(raw, dtype=np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = a.reshape(info["shape"]).copy()
    return out


# ---------------------------------------------------------------------------
# ggml block formats (simulation only)


def _f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float64)


def q8_0_roundtrip(x):
    """quantize_row_q8_0_ref then dequantize, row-wise over the last axis."""
    x = np.asarray(x, dtype=np.float32)
    shp = x.shape
    b = x.reshape(-1, 32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    d = amax / np.float32(127.0)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1.0) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = b * idv
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)  # roundf: half away from zero
    return (q.astype(np.float64) * _f16(d)).reshape(shp)


def q4_0_roundtrip(x):
    """quantize_row_q4_0_ref then dequantize, row-wise over the last axis."""
    x = np.asarray(x, dtype=np.float32)
    shp = x.shape
    b = x.reshape(-1, 32)
    idx = np.abs(b).argmax(axis=1)  # first of the largest magnitude, like the ggml loop
    mx = b[np.arange(b.shape[0]), idx][:, None]
    d = (mx / np.float32(-8.0)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1.0) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = (b * idv + np.float32(8.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(v).astype(np.int64))
    return ((q - 8).astype(np.float64) * _f16(d)).reshape(shp)


# ---------------------------------------------------------------------------
# building blocks


class Lin(nn.Module):
    """nn.Linear that can round its input through Q8_0 (quantized weights)."""

    def __init__(self, n_in, n_out, bias):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out, bias=bias, dtype=DT)
        self.act_q8 = False

    def forward(self, x):
        if self.act_q8:
            x = torch.from_numpy(q8_0_roundtrip(x.detach().numpy()))
        return self.lin(x)


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


class SiglipAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (Lin(d, d, True) for _ in range(4))

    def forward(self, x):  # x [n, d]
        n = x.shape[0]
        q = self.q_proj(x).view(n, self.h, self.dh).transpose(0, 1)
        k = self.k_proj(x).view(n, self.h, self.dh).transpose(0, 1)
        v = self.v_proj(x).view(n, self.h, self.dh).transpose(0, 1)
        s = torch.matmul(q, k.transpose(1, 2)) * (self.dh ** -0.5)
        p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, v).transpose(0, 1).reshape(n, self.h * self.dh)
        return self.out_proj(o)


class SiglipLayer(nn.Module):
    def __init__(self, d, inter, heads, eps):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(d, eps=eps, dtype=DT)
        self.self_attn = SiglipAttention(d, heads)
        self.layer_norm2 = nn.LayerNorm(d, eps=eps, dtype=DT)
        self.fc1 = Lin(d, inter, True)
        self.fc2 = Lin(inter, d, True)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.fc2(gelu_tanh(self.fc1(self.layer_norm2(x))))


class SiglipVision(nn.Module):
    """SiglipVisionModel without the pooling head: all tokens out."""

    def __init__(self, vc):
        super().__init__()
        d = vc["hidden_size"]
        self.p = vc["patch_size"]
        self.image_size = vc["image_size"]
        self.grid = self.image_size // self.p
        self.patch_embedding = nn.Conv2d(vc["num_channels"], d, self.p, stride=self.p, bias=True, dtype=DT)
        self.position_embedding = nn.Embedding(self.grid * self.grid, d, dtype=DT)
        eps = vc["layer_norm_eps"]
        self.layers = nn.ModuleList(
            SiglipLayer(d, vc["intermediate_size"], vc["num_attention_heads"], eps)
            for _ in range(vc["num_hidden_layers"])
        )
        self.post_layernorm = nn.LayerNorm(d, eps=eps, dtype=DT)

    def positions(self, height, width):
        """HF SiglipVisionEmbeddings.interpolate_pos_encoding."""
        w = self.position_embedding.weight
        n_pos, d = w.shape
        nh, nw = height // self.p, width // self.p
        if nh * nw == n_pos and height == width:
            return w
        side = int(math.isqrt(n_pos))
        g = w.reshape(1, side, side, d).permute(0, 3, 1, 2)
        g = F.interpolate(g, size=(nh, nw), mode="bicubic", align_corners=False)
        return g.permute(0, 2, 3, 1).reshape(nh * nw, d)

    def forward(self, pix):  # pix [3, H, W]
        _, hgt, wid = pix.shape
        x = self.patch_embedding(pix.unsqueeze(0))  # [1, d, gh, gw]
        x = x.flatten(2).transpose(1, 2)[0]  # [n, d], patches row-major
        x = x + self.positions(hgt, wid)
        for layer in self.layers:
            x = layer(x)
        return self.post_layernorm(x)


class RMSNorm(nn.Module):
    """T5LayerNorm: no mean subtraction, no bias."""

    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d, dtype=DT))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance):
    """HF T5Attention._relative_position_bucket, verbatim semantics."""
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    # HF computes this in float32; we do the same so that bucket edges agree.
    large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    relative_buckets += torch.where(is_small, relative_position, large)
    return relative_buckets


class T5Attention(nn.Module):
    def __init__(self, tc, has_bias, bidirectional):
        super().__init__()
        d, self.h, self.dk = tc["d_model"], tc["num_heads"], tc["d_kv"]
        inner = self.h * self.dk
        self.q, self.k, self.v = Lin(d, inner, False), Lin(d, inner, False), Lin(d, inner, False)
        self.o = Lin(inner, d, False)
        self.bidirectional = bidirectional
        self.nb = tc["relative_attention_num_buckets"]
        self.md = tc["relative_attention_max_distance"]
        self.relative_attention_bias = nn.Embedding(self.nb, self.h, dtype=DT) if has_bias else None

    def position_bias(self, nq, nk):
        ctx = torch.arange(nq, dtype=torch.long)[:, None]
        mem = torch.arange(nk, dtype=torch.long)[None, :]
        buckets = relative_position_bucket(mem - ctx, self.bidirectional, self.nb, self.md)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)  # [h, q, k]

    def forward(self, x, kv, bias):
        nq, nk = x.shape[0], kv.shape[0]
        q = self.q(x).view(nq, self.h, self.dk).transpose(0, 1)
        k = self.k(kv).view(nk, self.h, self.dk).transpose(0, 1)
        v = self.v(kv).view(nk, self.h, self.dk).transpose(0, 1)
        s = torch.matmul(q, k.transpose(1, 2))  # T5: no 1/sqrt(d) scaling
        if bias is not None:
            s = s + bias
        p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, v).transpose(0, 1).reshape(nq, self.h * self.dk)
        return self.o(o)


class T5FF(nn.Module):
    def __init__(self, tc):
        super().__init__()
        d, ff = tc["d_model"], tc["d_ff"]
        self.wi_0, self.wi_1, self.wo = Lin(d, ff, False), Lin(d, ff, False), Lin(ff, d, False)
        proj = tc["feed_forward_proj"]
        if proj == "gated-gelu":
            self.act = gelu_tanh  # HF "gelu_new"
        elif proj == "gated-silu":
            self.act = F.silu
        else:
            raise ValueError("unsupported feed_forward_proj %r" % proj)

    def forward(self, x):
        return self.wo(self.act(self.wi_0(x)) * self.wi_1(x))


class T5Block(nn.Module):
    def __init__(self, tc, decoder, first):
        super().__init__()
        eps = tc["layer_norm_epsilon"]
        self.decoder = decoder
        self.ln0 = RMSNorm(tc["d_model"], eps)
        self.attn = T5Attention(tc, first, bidirectional=not decoder)
        if decoder:
            self.ln_x = RMSNorm(tc["d_model"], eps)
            self.xattn = T5Attention(tc, False, bidirectional=False)
        self.ln_ff = RMSNorm(tc["d_model"], eps)
        self.ff = T5FF(tc)

    def forward(self, x, bias, enc=None):
        x = x + self.attn(self.ln0(x), self.ln0(x), bias)
        if self.decoder:
            x = x + self.xattn(self.ln_x(x), enc, None)
        return x + self.ff(self.ln_ff(x))


class T5(nn.Module):
    def __init__(self, tc):
        super().__init__()
        self.tc = tc
        d = tc["d_model"]
        self.shared = nn.Embedding(tc["vocab_size"], d, dtype=DT)
        self.enc = nn.ModuleList(T5Block(tc, False, i == 0) for i in range(tc["num_layers"]))
        self.dec = nn.ModuleList(T5Block(tc, True, i == 0) for i in range(tc["num_decoder_layers"]))
        self.enc_norm = RMSNorm(d, tc["layer_norm_epsilon"])
        self.dec_norm = RMSNorm(d, tc["layer_norm_epsilon"])
        self.tied = bool(tc["tie_word_embeddings"])
        self.lm_head = None if self.tied else Lin(d, tc["vocab_size"], False)
        self.head_act_q8 = False  # tied head: quantized token_embd used as the output matrix

    def encode(self, x):  # x [n, d] embeddings
        bias = self.enc[0].attn.position_bias(x.shape[0], x.shape[0])
        for b in self.enc:
            x = b(x, bias)
        return self.enc_norm(x)

    def decode_logits(self, enc, tokens):
        """Logits [len(tokens), vocab] of a full decoder pass (causal)."""
        n = len(tokens)
        x = self.shared(torch.tensor(tokens, dtype=torch.long))
        bias = self.dec[0].attn.position_bias(n, n)
        causal = torch.triu(torch.full((n, n), float("-inf"), dtype=DT), diagonal=1)
        bias = bias + causal
        for b in self.dec:
            x = b(x, bias, enc)
        x = self.dec_norm(x)
        if self.tied:
            x = x * (self.tc["d_model"] ** -0.5)
            if self.head_act_q8:
                x = torch.from_numpy(q8_0_roundtrip(x.detach().numpy()))
            return F.linear(x, self.shared.weight)
        return self.lm_head(x)


# ---------------------------------------------------------------------------
# the whole model


class Pali3(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.vision = SiglipVision(config["vision_config"])
        tc = config["text_config"]
        self.projector = Lin(config["vision_config"]["hidden_size"], tc["d_model"], True)
        self.t5 = T5(tc)
        self.eos = tc.get("eos_token_id", 1)
        self.start = tc.get("decoder_start_token_id", 0)

    # -- loading ----------------------------------------------------------

    def _mapping(self):
        """(checkpoint tensor name, parameter, kind) for every tensor."""
        m = []
        v = "vision_tower.vision_model."
        vis = self.vision
        m.append((v + "embeddings.patch_embedding.weight", vis.patch_embedding.weight, "conv"))
        m.append((v + "embeddings.patch_embedding.bias", vis.patch_embedding.bias, "vec"))
        m.append((v + "embeddings.position_embedding.weight", vis.position_embedding.weight, "pos"))
        for i, L in enumerate(vis.layers):
            p = v + "encoder.layers.%d." % i
            for nm, mod in (("layer_norm1", L.layer_norm1), ("layer_norm2", L.layer_norm2)):
                m.append((p + nm + ".weight", mod.weight, "vec"))
                m.append((p + nm + ".bias", mod.bias, "vec"))
            for nm, mod in (
                ("self_attn.q_proj", L.self_attn.q_proj),
                ("self_attn.k_proj", L.self_attn.k_proj),
                ("self_attn.v_proj", L.self_attn.v_proj),
                ("self_attn.out_proj", L.self_attn.out_proj),
                ("mlp.fc1", L.fc1),
                ("mlp.fc2", L.fc2),
            ):
                m.append((p + nm + ".weight", mod, "lin"))
                m.append((p + nm + ".bias", mod.lin.bias, "vec"))
        m.append((v + "post_layernorm.weight", vis.post_layernorm.weight, "vec"))
        m.append((v + "post_layernorm.bias", vis.post_layernorm.bias, "vec"))
        m.append(("multi_modal_projector.linear.weight", self.projector, "lin"))
        m.append(("multi_modal_projector.linear.bias", self.projector.lin.bias, "vec"))
        t = "language_model."
        m.append((t + "shared.weight", self.t5.shared.weight, "embd"))
        if not self.t5.tied:
            m.append((t + "lm_head.weight", self.t5.lm_head, "lin"))
        for stack, blocks in (("encoder", self.t5.enc), ("decoder", self.t5.dec)):
            for i, B in enumerate(blocks):
                p = t + "%s.block.%d.layer." % (stack, i)
                for x in "qkvo":
                    m.append((p + "0.SelfAttention.%s.weight" % x, getattr(B.attn, x), "lin"))
                if i == 0:
                    m.append((p + "0.SelfAttention.relative_attention_bias.weight", B.attn.relative_attention_bias.weight, "vec"))
                m.append((p + "0.layer_norm.weight", B.ln0.weight, "vec"))
                ff = 1
                if stack == "decoder":
                    for x in "qkvo":
                        m.append((p + "1.EncDecAttention.%s.weight" % x, getattr(B.xattn, x), "lin"))
                    m.append((p + "1.layer_norm.weight", B.ln_x.weight, "vec"))
                    ff = 2
                for x in ("wi_0", "wi_1", "wo"):
                    m.append((p + "%d.DenseReluDense.%s.weight" % (ff, x), getattr(B.ff, x), "lin"))
                m.append((p + "%d.layer_norm.weight" % ff, B.ln_ff.weight, "vec"))
            m.append((t + "%s.final_layer_norm.weight" % stack, (self.t5.enc_norm if stack == "encoder" else self.t5.dec_norm).weight, "vec"))
        return m

    def tensor_names(self):
        return [n for n, _, _ in self._mapping()]

    def load_tensors(self, tensors, quant=None):
        """Copies {name: array} into the model; quant simulates palid's files."""
        names = set(tensors)
        with torch.no_grad():
            for name, target, kind in self._mapping():
                if name not in tensors:
                    raise KeyError("missing tensor %s" % name)
                names.discard(name)
                a = np.asarray(tensors[name], dtype=np.float64)
                act_q8 = False
                if quant and kind in ("lin", "embd") and a.shape[-1] % 32 == 0:
                    if quant == "f16":
                        a = _f16(a)
                    elif quant == "q8_0":
                        a, act_q8 = q8_0_roundtrip(a), True
                    elif quant == "q4_0":
                        a, act_q8 = q4_0_roundtrip(a), True
                    else:
                        raise ValueError(quant)
                if quant == "f16" and kind in ("conv", "pos"):
                    a = _f16(a)
                if kind == "lin":
                    param = target.lin.weight
                    target.act_q8 = act_q8
                else:
                    param = target
                if kind == "embd":
                    self.t5.head_act_q8 = act_q8
                if tuple(param.shape) != a.shape:
                    raise ValueError("tensor %s has shape %s, want %s" % (name, a.shape, tuple(param.shape)))
                param.copy_(torch.from_numpy(a))
        if names:
            raise KeyError("unexpected tensors: %s" % sorted(names))

    @classmethod
    def from_pretrained(cls, path, quant=None):
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
        model = cls(config)
        model.load_tensors(read_safetensors(os.path.join(path, "model.safetensors")), quant)
        model.eval()
        return model

    # -- inference --------------------------------------------------------

    @torch.no_grad()
    def encode_image(self, pix):
        """pix: array [3, H, W] in [-1, 1] -> visual tokens [n, d_model]."""
        pix = torch.as_tensor(np.asarray(pix, dtype=np.float64))
        return self.projector(self.vision(pix))

    @torch.no_grad()
    def encode(self, frames, prompt_ids):
        """frames: list of [3,H,W]; prompt_ids without EOS. Returns (visual, encoder output)."""
        vis = [self.encode_image(f) for f in frames]
        ids = torch.tensor(list(prompt_ids) + [self.eos], dtype=torch.long)
        x = torch.cat(vis + [self.t5.shared(ids)], dim=0)
        return vis, self.t5.encode(x)

    @torch.no_grad()
    def step_logits(self, enc, tokens):
        """Logits of the next token after the decoder input tokens (start first)."""
        return self.t5.decode_logits(enc, tokens)[-1]

    @torch.no_grad()
    def greedy(self, enc, max_tokens):
        toks = [self.start]
        logits = []
        for _ in range(max_tokens):
            lg = self.step_logits(enc, toks)
            logits.append(lg.numpy().copy())
            t = int(torch.argmax(lg))  # first maximum: ties toward the lower id
            toks.append(t)
            if t == self.eos:
                break
        return toks[1:], logits

    @torch.no_grad()
    def beam(self, enc, k, max_tokens, trace=None):
        """Beam search exactly as docs/contracts.md specifies.

        Returns (tokens without the start token, score). If trace is a list,
        the score gaps that decided each step are appended to it.
        """
        alive = [([self.start], 0.0)]
        finished = []
        for _ in range(max_tokens):
            cands = []
            for bi, (toks, sc) in enumerate(alive):
                lp = torch.log_softmax(self.step_logits(enc, toks), dim=-1).numpy()
                order = sorted(range(len(lp)), key=lambda i: (-lp[i], i))
                if trace is not None:
                    trace.append(("propose", lp[order[k - 1]] - lp[order[k]]))
                for t in order[:k]:
                    cands.append((sc + float(lp[t]), bi, t))
            cands.sort(key=lambda c: (-c[0], c[1], c[2]))
            new_alive = []
            walked = len(cands)
            for r, (s, bi, t) in enumerate(cands):
                if len(new_alive) >= k:
                    walked = r
                    break
                if t == self.eos:
                    if r < k:
                        finished.append((alive[bi][0] + [t], s))
                else:
                    new_alive.append((alive[bi][0] + [t], s))
            if trace is not None:
                # the walk's decisions hang on the order of the candidates it saw
                # and on the first one it did not take.
                for i in range(min(walked, len(cands) - 1)):
                    trace.append(("order", cands[i][0] - cands[i + 1][0]))
            alive = new_alive
            if len(finished) >= k or not alive:
                break
            best_fin = max((s for _, s in finished), default=None)
            if best_fin is not None:
                if trace is not None:
                    trace.append(("stop", abs(best_fin - alive[0][1])))
                if best_fin >= alive[0][1]:
                    break
        if finished:
            best = finished[0]
            for f in finished[1:]:
                if f[1] > best[1]:
                    best = f
        else:
            best = alive[0]
        return best[0][1:], best[1]
