"""A miniature PaLI-3 in plain torch.nn: SigLIP ViT, linear projector and a
T5 v1.1 encoder-decoder, with exactly the computation palid runs
(DESIGN.md section 3) and Hugging Face tensor names for export."""

import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


# ----------------------------------------------------------------------------
# SigLIP vision tower (SiglipVisionModel names under vision_model.)


class SiglipAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x):
        b, n, d = x.shape
        dh = d // self.h
        q = self.q_proj(x).view(b, n, self.h, dh).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.h, dh).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.h, dh).transpose(1, 2)
        a = torch.softmax((q @ k.transpose(-1, -2) * dh ** -0.5).float(), dim=-1)
        return self.out_proj((a @ v).transpose(1, 2).reshape(b, n, d))


class SiglipMLP(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.fc1 = nn.Linear(d, ff)
        self.fc2 = nn.Linear(ff, d)

    def forward(self, x):
        return self.fc2(gelu_tanh(self.fc1(x)))


class SiglipLayer(nn.Module):
    def __init__(self, d, ff, heads, eps):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.self_attn = SiglipAttention(d, heads)
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = SiglipMLP(d, ff)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipEmbeddings(nn.Module):
    def __init__(self, d, patch, image):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, d, patch, stride=patch)
        self.position_embedding = nn.Embedding((image // patch) ** 2, d)

    def forward(self, pix):
        x = self.patch_embedding(pix).flatten(2).transpose(1, 2)
        return x + self.position_embedding.weight[None]


class SiglipEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList(
            SiglipLayer(cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"])
            for _ in range(cfg["num_hidden_layers"]))


class SiglipVisionModel(nn.Module):
    """Named so that state_dict keys read embeddings.*, encoder.layers.N.*, post_layernorm.*."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embeddings = SiglipEmbeddings(cfg["hidden_size"], cfg["patch_size"], cfg["image_size"])
        self.encoder = SiglipEncoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, pix):
        """pix: [B, 3, H, W] in [-1, 1]; returns all tokens [B, N, D]."""
        x = self.embeddings(pix)
        for l in self.encoder.layers:
            x = l(x)
        return self.post_layernorm(x)


class VisionTower(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.vision_model = SiglipVisionModel(cfg)

    def forward(self, pix):
        return self.vision_model(pix)


# ----------------------------------------------------------------------------
# T5 v1.1 (T5ForConditionalGeneration names)


def relative_bucket(rel, bidirectional, num_buckets, max_distance):
    """Hugging Face T5's _relative_position_bucket."""
    buckets = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        buckets += (rel > 0).long() * num_buckets
        rel = rel.abs()
    else:
        rel = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).long()
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(small, rel, large)


class T5Attention(nn.Module):
    def __init__(self, cfg, has_bias, bidirectional):
        super().__init__()
        d, h, dk = cfg["d_model"], cfg["num_heads"], cfg["d_kv"]
        self.h, self.dk = h, dk
        self.bidirectional = bidirectional
        self.logit_penalty = None
        self.nb = cfg["relative_attention_num_buckets"]
        self.md = cfg["relative_attention_max_distance"]
        self.q = nn.Linear(d, h * dk, bias=False)
        self.k = nn.Linear(d, h * dk, bias=False)
        self.v = nn.Linear(d, h * dk, bias=False)
        self.o = nn.Linear(h * dk, d, bias=False)
        nn.init.normal_(self.q.weight, std=(d * dk) ** -0.5)
        nn.init.normal_(self.k.weight, std=d ** -0.5)
        nn.init.normal_(self.v.weight, std=d ** -0.5)
        nn.init.normal_(self.o.weight, std=(h * dk) ** -0.5)
        if has_bias:
            self.relative_attention_bias = nn.Embedding(self.nb, h)

    def position_bias(self, nq, nk, device):
        ctx = torch.arange(nq, device=device)[:, None]
        mem = torch.arange(nk, device=device)[None, :]
        b = relative_bucket(mem - ctx, self.bidirectional, self.nb, self.md)
        return self.relative_attention_bias(b).permute(2, 0, 1)[None]  # [1, H, q, k]

    def forward(self, x, kv=None, bias=None):
        b, n, _ = x.shape
        kv = x if kv is None else kv
        m = kv.shape[1]
        q = self.q(x).view(b, n, self.h, self.dk).transpose(1, 2)
        k = self.k(kv).view(b, m, self.h, self.dk).transpose(1, 2)
        v = self.v(kv).view(b, m, self.h, self.dk).transpose(1, 2)
        s = q @ k.transpose(-1, -2)
        if self.training and self.logit_penalty is not None:
            # Training only: the mean squared score, which the trainer can
            # penalise so that no head saturates (see train.py).
            self.logit_penalty.append(s.float().pow(2).mean())
        if bias is not None:
            s = s + bias
        a = torch.softmax(s.float(), dim=-1)
        return self.o((a @ v).transpose(1, 2).reshape(b, n, self.h * self.dk))


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class DenseGatedGelu(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.wi_0 = nn.Linear(d, ff, bias=False)
        self.wi_1 = nn.Linear(d, ff, bias=False)
        self.wo = nn.Linear(ff, d, bias=False)
        nn.init.normal_(self.wi_0.weight, std=d ** -0.5)
        nn.init.normal_(self.wi_1.weight, std=d ** -0.5)
        nn.init.normal_(self.wo.weight, std=ff ** -0.5)

    def forward(self, x):
        return self.wo(gelu_tanh(self.wi_0(x)) * self.wi_1(x))


class SelfAttnLayer(nn.Module):
    def __init__(self, cfg, has_bias, bidirectional):
        super().__init__()
        self.SelfAttention = T5Attention(cfg, has_bias, bidirectional)
        self.layer_norm = RMSNorm(cfg["d_model"], cfg["layer_norm_epsilon"])


class CrossAttnLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.EncDecAttention = T5Attention(cfg, False, True)
        self.layer_norm = RMSNorm(cfg["d_model"], cfg["layer_norm_epsilon"])


class FFLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.DenseReluDense = DenseGatedGelu(cfg["d_model"], cfg["d_ff"])
        self.layer_norm = RMSNorm(cfg["d_model"], cfg["layer_norm_epsilon"])


class T5Block(nn.Module):
    def __init__(self, cfg, i, decoder):
        super().__init__()
        layers = [SelfAttnLayer(cfg, i == 0, not decoder)]
        if decoder:
            layers.append(CrossAttnLayer(cfg))
        layers.append(FFLayer(cfg))
        self.layer = nn.ModuleList(layers)
        self.decoder = decoder

    def forward(self, x, bias, enc=None, enc_bias=None):
        sa = self.layer[0]
        x = x + sa.SelfAttention(sa.layer_norm(x), bias=bias)
        if self.decoder:
            ca = self.layer[1]
            x = x + ca.EncDecAttention(ca.layer_norm(x), kv=enc, bias=enc_bias)
        ff = self.layer[-1]
        return x + ff.DenseReluDense(ff.layer_norm(x))


class T5Stack(nn.Module):
    def __init__(self, cfg, n, decoder):
        super().__init__()
        self.block = nn.ModuleList(T5Block(cfg, i, decoder) for i in range(n))
        self.final_layer_norm = RMSNorm(cfg["d_model"], cfg["layer_norm_epsilon"])
        self.decoder = decoder

    def forward(self, x, mask=None, enc=None, enc_mask=None):
        """mask: [B, n] key mask (1 keep) for the encoder; enc_mask for cross attention."""
        n = x.shape[1]
        bias = self.block[0].layer[0].SelfAttention.position_bias(n, n, x.device)
        if self.decoder:
            causal = torch.triu(torch.full((n, n), float("-inf"), device=x.device), 1)
            bias = bias + causal
        elif mask is not None:
            bias = bias + (1.0 - mask[:, None, None, :].float()) * -1e9
        enc_bias = None
        if enc_mask is not None:
            enc_bias = (1.0 - enc_mask[:, None, None, :].float()) * -1e9
        for blk in self.block:
            x = blk(x, bias, enc, enc_bias)
        return self.final_layer_norm(x)


class T5(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.shared = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        nn.init.normal_(self.shared.weight, std=1.0)
        self.encoder = T5Stack(cfg, cfg["num_layers"], False)
        self.decoder = T5Stack(cfg, cfg["num_decoder_layers"], True)
        self.lm_head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)
        nn.init.normal_(self.lm_head.weight, std=cfg["d_model"] ** -0.5)


class Projector(nn.Module):
    def __init__(self, dv, dt):
        super().__init__()
        self.linear = nn.Linear(dv, dt)


class PaLI(nn.Module):
    """Keys: vision_tower.vision_model.*, multi_modal_projector.linear.*, language_model.*"""

    def __init__(self, vcfg, tcfg):
        super().__init__()
        self.vision_tower = VisionTower(vcfg)
        self.multi_modal_projector = Projector(vcfg["hidden_size"], tcfg["d_model"])
        self.language_model = T5(tcfg)

    def encode(self, vis, ids, ids_mask):
        """vis: [B, Nv, Dv] ViT tokens (all frames concatenated); ids: [B, L]
        prompt ids ending in EOS, right-padded; returns encoder output, mask."""
        lm = self.language_model
        v = self.multi_modal_projector.linear(vis)
        x = torch.cat([v, lm.shared(ids)], 1)
        mask = torch.cat([torch.ones(vis.shape[:2], dtype=ids_mask.dtype), ids_mask], 1)
        return lm.encoder(x, mask=mask), mask

    def decode_logits(self, enc, mask, dec_in):
        lm = self.language_model
        y = lm.decoder(lm.shared(dec_in), enc=enc, enc_mask=mask)
        return lm.lm_head(y)

    @torch.no_grad()
    def greedy(self, vis, ids, ids_mask, max_tokens=32, eos=1):
        enc, mask = self.encode(vis, ids, ids_mask)
        b = vis.shape[0]
        out = torch.zeros(b, 1, dtype=torch.long)
        done = torch.zeros(b, dtype=torch.bool)
        for _ in range(max_tokens):
            logits = self.decode_logits(enc, mask, out)[:, -1]
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.ones_like(nxt) * eos, nxt)
            out = torch.cat([out, nxt[:, None]], 1)
            done |= nxt == eos
            if done.all():
                break
        res = []
        for row in out[:, 1:].tolist():
            if eos in row:
                row = row[:row.index(eos)]
            res.append(row)
        return res


# ----------------------------------------------------------------------------
# safetensors writer (the format is a JSON header and raw little-endian data)


def save_safetensors(tensors, path):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().float().cpu()
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
