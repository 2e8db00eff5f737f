#!/usr/bin/python3
"""Trains palid's bundled demo model, a miniature PaLI-3, on the synthetic
world written by `palid synth`.

  train.py stage0  DATA OUT      SigLIP ViT + text tower, sigmoid loss on (scene, caption)
                                 (DENSE=w: plus a dense per-patch head on the label maps)
  train.py stage0-dense DATA OUT continues a dense stage 0 on the dense loss alone (STAGE0D_FROM=CKPT:
                                 a whole model's ViT instead, STAGE0D_VIT_ADD new layers; OUT/pali.pt)
                                 (STAGE0D_CENTRE=w: each object patch also tells its object's centre)
  train.py stage1  DATA OUT      ViT frozen (features cached): projector + T5 v1.1 on the task mixture
  train.py stage2  DATA OUT      everything, ViT included, on the task mixture at a lower rate
  train.py stage3  DATA OUT      the long joint run from OUT/pali2.pt (run.sh: stage 1's model)
  train.py stage4  DATA OUT      from stage 3; by default attention scores kept soft and position
                                 probes (tried: no gain); run.sh runs it with both off at half
                                 stage 3's rate (docs/demo-model.md)
  train.py stage5  DATA OUT      from stage 4, lower rate, a clip batch every other step
  train.py stage6  DATA OUT      from stage 5, stage 0's dense head kept on the ViT, "where" and
                                 counts sampled more often
  train.py stage7  DATA OUT      from stage 6, each answer's token losses summed
  train.py stage8  DATA OUT      stage 7 once more
  train.py retokenize DATA OUT DATA2 OUT2 N
                                 OUT/paliN.pt moved to DATA2's tokenizer, as OUT2/paliN.pt (the
                                 embedding rows of the pieces both share kept, the others built
                                 from the old pieces that spell them)
  train.py stage9  DATA OUT      stage 8's settings at lr 5e-4, 1,500 steps (run.sh: after
                                 retokenize, with each answer word one piece)
  train.py stage10 DATA OUT      from stage 9, lr 3e-4, 800 steps, counts and the sign sampled
                                 more often
  train.py stage11 DATA OUT      from stage 10, counts of 2 and 3 sampled 4x and 8x by default
                                 (tried: it learns twos but loses ones). run.sh runs it six times
                                 after where-only, with its own weights (STAGE11_WEIGHTS replaces
                                 the default), each from the run before (STAGEn_FROM,
                                 STAGEn_HEAD_FROM), each with its own STAGEn_SEED. Session 9's
                                 tries are options of any joint stage: STAGEn_QAT,
                                 STAGEn_FLIP_WHERE, STAGEn_ROWS (docs/demo-model.md; none shipped)
  train.py eval    DATA OUT      exact match per task on the held-out sets (CKPT=file to pick one)
  train.py seen    DATA DST      DST: a data directory whose held-out sets are the first 500 training
                                 scenes and 200 training clips (links), so that eval DST measures
                                 what a model gets right of what it was trained on
  train.py directions DATA OUT   OUT/eval.jsonl's direction answers by true direction, the half of
                                 the picture the object is in, and the answer (SPLIT=eval-clips)
  train.py diagnose DATA OUT     position probes and cross-attention statistics (CKPT=file to pick one)
  train.py where-only DATA OUT   a model (new, or WHERE_FROM) trained on "where" alone, then diagnose's
                                 up_and_down (can top and bottom be learnt at all?);
                                 WHERE_LR, WHERE_FREEZE; saved as OUT/pali-where.pt
  train.py probe-dense DATA OUT  what stage 0's dense head reads per patch and per object (DENSE > 0;
                                 CKPT=OUT/paliN.pt: that model's ViT and OUT/dense_headN.pt, or
                                 OUT/dense_head.pt when there is none)
  train.py export  DATA OUT DST  Hugging Face layout: config.json, model.safetensors, spiece.model
  train.py bench   DATA          training-step speed, float32 against TRAIN_BF16's bfloat16 autocast
  train.py motion  DATA OUT      the clips: from MOTION_FROM, ViT frozen, a per-patch motion target
                                 on the T5 encoder's visual tokens (training only); run.sh runs it
                                 fourteen times after stage 11 (MOTION_REINIT in the first; the last
                                 seven train the ViT too: MOTION_VIT_SCALE, MOTION_DENSE); options
                                 that change the model's shape: MOTION_ENC_ADD (encoder blocks in
                                 front), MOTION_BUCKETS (relative position buckets), MOTION_VIT_ADD
                                 (ViT layers at the end), each starting as the same function as
                                 MOTION_FROM
                                 (MOTION_CENTRE=w: the object centres of STAGE0D_CENTRE kept)
  train.py probe-motion DATA OUT what can learn motion from CKPT's frozen ViT features (frames 0
                                 and 15): a fresh or CKPT's T5 encoder, or absolute positions;
                                 PROBE_AXES=tokens|pixels turns the token order or the pictures
  train.py rows    DATA OUT      linear probes of each object patch's row and column in CKPT's ViT
                                 tokens, projected tokens and T5 encoder output, and of its object's
                                 centre (ROWS_SCENES, 3000)
  train.py average OUT CKPT...   the mean of the checkpoints' weights (a "model soup" of runs
                                 from one parent) as OUT/pali-motion.pt and OUT/pali.pt; OUT
                                 ending in .pt: the mean of head files written there
  train.py import  DATA MODEL OUT palid's converted model (MODEL/model.gguf, mmproj.gguf, e.g.
                                 models/default) back as OUT/pali.pt, to train on from it

DATA holds scenes/, clips/, eval-scenes/, eval-clips/ (palid synth output)
and spiece.model; OUT receives checkpoints and logs. Seeds are fixed.
"""

import collections
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

import pali

torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))

# TRAIN_BF16=1: the training steps' forward passes under CPU autocast to
# bfloat16 (matrix products in bf16; weights, optimiser state, norms,
# softmaxes and losses in float32). On a CPU with AMX (oneDNN's bf16
# kernels) the ViT's matrix products ran 8 to 18 times faster than
# OpenBLAS's float32 (docs/demo-model.md, session 12).
# Evaluation, probes and export stay in float32.
BF16 = os.environ.get("TRAIN_BF16", "0") == "1"


def amp():
    """The autocast context of a training step's forward pass (TRAIN_BF16)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16)

VISION = dict(hidden_size=96, intermediate_size=384, num_hidden_layers=3, num_attention_heads=3,
              image_size=64, patch_size=8, layer_norm_eps=1e-6, num_channels=3,
              hidden_act="gelu_pytorch_tanh")
TEXT = dict(d_model=128, d_kv=32, d_ff=256, num_layers=2, num_decoder_layers=2, num_heads=4,
            relative_attention_num_buckets=32, relative_attention_max_distance=1024,
            layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
            decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, is_encoder_decoder=True,
            dense_act_fn="gelu_new", is_gated_act=True)
EOS = 1


def log(out, *a):
    msg = " ".join(str(x) for x in a)
    print(msg, flush=True)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "train.log"), "a") as f:
        f.write(msg + "\n")


# ----------------------------------------------------------------------------
# data


class Tokenizer:
    """spm_encode / the vocabulary file of a SentencePiece model."""

    def __init__(self, model):
        self.model = model
        self.pieces = [l.split("\t")[0] for l in open(model[:-len(".model")] + ".vocab", encoding="utf-8")]

    def size(self):
        return len(self.pieces)

    def encode_all(self, texts):
        uniq = sorted(set(texts))
        p = subprocess.run(["spm_encode", "--model=" + self.model, "--output_format=id"],
                           input="\n".join(uniq) + "\n", capture_output=True, text=True, check=True)
        ids = [[int(t) for t in l.split()] for l in p.stdout.splitlines()]
        assert len(ids) == len(uniq)
        return dict(zip(uniq, ids))

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids if i > 2).replace("\u2581", " ").strip()


def load_set(path, tok):
    """Images as uint8 [N, 64, 64, 3] and records (image indices, prompt, answer, task)."""
    recs = [json.loads(l) for l in open(os.path.join(path, "questions.jsonl"))]
    cache = os.path.join(path, "images.npy")
    names = sorted({p for r in recs for p in r["images"]})
    index = {p: i for i, p in enumerate(names)}
    if os.path.exists(cache):
        imgs = np.load(cache)
    else:
        imgs = np.stack([np.asarray(Image.open(os.path.join(path, p)).convert("RGB")) for p in names])
        np.save(cache, imgs)
    enc = tok.encode_all([r["prompt"] for r in recs] + [r["answer"] for r in recs])
    out = []
    for r in recs:
        out.append(dict(images=[index[p] for p in r["images"]], prompt=enc[r["prompt"]] + [EOS],
                        answer=enc[r["answer"]] + [EOS], text=r["answer"], task=r["task"], seed=r["seed"]))
    return imgs, out


def to_pixels(u8):
    """uint8 HWC -> float CHW in [-1, 1], as palid's capture.Normalize."""
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def pad(seqs, value=0):
    n = max(len(s) for s in seqs)
    t = torch.full((len(seqs), n), value, dtype=torch.long)
    m = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        t[i, :len(s)] = torch.tensor(s)
        m[i, :len(s)] = 1
    return t, m


def lr_at(step, steps, peak, warm):
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


# ----------------------------------------------------------------------------
# stage 0: SigLIP


class TextTower(nn.Module):
    def __init__(self, vocab, d=128, layers=2, maxlen=64):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(maxlen, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.enc = nn.TransformerEncoder(layer, layers)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, d)

    def forward(self, ids, mask):
        x = self.emb(ids) + self.pos[: ids.shape[1]][None]
        x = self.enc(x, src_key_padding_mask=mask == 0)
        x = self.ln(x)
        m = mask[..., None].float()
        return self.head((x * m).sum(1) / m.sum(1))


def siglip_retrieval(vit, img_head, txt, pix, ids, mask, caps):
    """Image-to-text top-1 on a fixed held-out batch (a hit: the best caption
    equals the image's own) and the spread of the image embeddings."""
    vit.eval()
    with torch.no_grad():
        zi = F.normalize(img_head(vit(pix).mean(1)), dim=-1)
        zt = F.normalize(txt(ids, mask), dim=-1)
        best = (zi @ zt.T).argmax(1).tolist()
    vit.train()
    acc = sum(caps[b] == caps[i] for i, b in enumerate(best)) / len(best)
    return acc, zi.std(0).mean().item()


SHAPES = ["circle", "square", "triangle", "star"]
COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
ALPHABET = "ACEFHJKLMNPRTUVWXY234679"  # synth.CodeAlphabet
# Dense classes: background, shape x colour, the sign's panel, a character.
DENSE_PANEL = 1 + len(SHAPES) * len(COLORS)
DENSE_CLASSES = DENSE_PANEL + 1 + len(ALPHABET)


def load_dense(path, nimgs):
    """Each scene's label map (palid synth's scene-NNNNNN.labels.png,
    synth.Scene.Labels) mapped to dense classes: uint8 [N, 64, 64], cached
    in dense.npy. Label 1+i becomes object i's shape x colour, 240+i the
    code's character i, 255 the rest of the panel."""
    cache = os.path.join(path, "dense.npy")
    if os.path.exists(cache):
        return np.load(cache)
    recs = [json.loads(l) for l in open(os.path.join(path, "scenes.jsonl"))]
    assert len(recs) == nimgs, f"{path}: {len(recs)} label maps for {nimgs} pictures"
    out = np.zeros((nimgs, 64, 64), dtype=np.uint8)
    for n, r in enumerate(recs):
        lut = np.zeros(256, dtype=np.uint8)
        for i, o in enumerate(r["objects"] or []):
            lut[1 + i] = 1 + SHAPES.index(o["shape"]) * len(COLORS) + COLORS.index(o["color"])
        lut[255] = DENSE_PANEL
        for i, c in enumerate(r.get("sign") or ""):
            lut[240 + i] = DENSE_PANEL + 1 + ALPHABET.index(c)
        out[n] = lut[np.asarray(Image.open(os.path.join(path, r["labels"])))]
    np.save(cache, out)
    return out


def load_centres(path, nimgs, patch):
    """For each scene and patch, the centre of the object that covers most
    of the patch, in patch units from the picture's top left (the mean of
    the object's pixels in the label map, synth.Scene.Labels), and the
    share of the patch it covers (0 where no object does): float32
    [N, patches, 3] as (x, y, share), cached in centres.npy. Unlike the
    dense classes, each object is told apart (two yellow circles have
    two centres)."""
    cache = os.path.join(path, "centres.npy")
    if os.path.exists(cache):
        return np.load(cache)
    recs = [json.loads(l) for l in open(os.path.join(path, "scenes.jsonl"))]
    assert len(recs) == nimgs, f"{path}: {len(recs)} label maps for {nimgs} pictures"
    size = VISION["image_size"]  # the label maps' size, the pictures'
    g = size // patch
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    out = np.zeros((nimgs, g * g, 3), dtype=np.float32)
    for n, r in enumerate(recs):
        lab = np.asarray(Image.open(os.path.join(path, r["labels"])))
        best = np.zeros(g * g, dtype=np.float32)
        for i in range(len(r["objects"] or [])):
            m = lab == 1 + i
            if not m.any():
                continue
            cx, cy = xs[m].mean() / patch, ys[m].mean() / patch
            share = m.reshape(g, patch, g, patch).mean((1, 3)).ravel()
            take = share > best
            best[take] = share[take]
            out[n, take] = (cx, cy, 0)
        out[n, :, 2] = best
    np.save(cache, out)
    return out


def dense_targets(dense, patch):
    """The share of each dense class in each patch: [B, patches, classes]."""
    b, h, w = dense.shape
    gh, gw = h // patch, w // patch
    # Count each (picture, patch, class) with one bincount: the mean of the
    # one-hot maps over each patch, exactly, without building them.
    cell = (np.arange(h)[:, None] // patch) * gw + np.arange(w)[None, :] // patch
    idx = (np.arange(b)[:, None, None] * (gh * gw) + cell) * DENSE_CLASSES + dense
    counts = np.bincount(idx.ravel(), minlength=b * gh * gw * DENSE_CLASSES)
    return torch.from_numpy(counts.reshape(b, gh * gw, DENSE_CLASSES)).float() / (patch * patch)


def fit_dense_head(head, vit, imgs, dense, steps, fg_weight):
    """Fits the dense head alone on vit's tokens as they are (the ViT
    untouched): steps batches of 128 of imgs with their label maps dense,
    AdamW at 3e-3. For a model whose dense head is gone (train.py import).
    Returns the last batch's loss."""
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    for i in range(steps):
        idx = random.sample(range(len(imgs)), 128)
        with torch.no_grad(), amp():
            f = vit(to_pixels(imgs[idx]))
        with amp():
            loss = dense_loss(head, f, dense_targets(dense[idx], VISION["patch_size"]), fg_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def dense_loss(head, tokens, target, fg_weight):
    """Soft cross-entropy of the dense head against the patch shares,
    each patch weighted 1 + fg_weight times its non-background share:
    four in five patches are background only and would drown the rest."""
    w = 1 + fg_weight * (1 - target[..., 0])
    return (-(target * F.log_softmax(head(tokens).float(), -1)).sum(-1) * w).sum() / w.sum()


def centre_loss(head, tokens, centres):
    """The squared error (in patches squared) of the centre head's guess
    of each object patch's object centre (load_centres), each patch
    weighted by the share of it the object covers, patches less than a
    quarter covered left out. Session 23 found the ViT's tokens tell x
    linearly to 3.2 pixels and y only to 4.8 (train.py rows); this
    asks each token for its object's exact place on both axes."""
    c = torch.as_tensor(centres)
    w = c[..., 2] * (c[..., 2] >= 0.25)
    err = ((head(tokens).float() - c[..., :2]) ** 2).sum(-1)
    return (err * w).sum() / w.sum().clamp(min=1e-6)


@torch.no_grad()
def centre_error(head, tokens, centres):
    """Held-out RMSE in pixels of the centre head's x and y, from the ViT's
    tokens (heldout_tokens), on the patches an object covers at least
    half of."""
    pred = head(tokens).float()
    c = torch.as_tensor(centres)
    keep = c[..., 2] >= 0.5
    err = (pred - c[..., :2])[keep] * VISION["patch_size"]
    return tuple(err.pow(2).mean(0).sqrt().tolist())


def new_centre_head(path=None):
    """A linear head from ViT tokens to (x, y) in patches: path's, or one
    that starts at the picture's centre."""
    head = nn.Linear(VISION["hidden_size"], 2)
    if path:
        head.load_state_dict(torch.load(path))
    else:
        nn.init.zeros_(head.weight)
        nn.init.constant_(head.bias, VISION["image_size"] / VISION["patch_size"] / 2)
    return head


def dense_heldout(data, eimgs, n=256):
    """The first n held-out scenes' pixels and dense targets, for dense_accuracy."""
    dense = load_dense(os.path.join(data, "eval-scenes"), len(eimgs))[:n]
    return to_pixels(eimgs[:n]), dense_targets(dense, VISION["patch_size"])


@torch.no_grad()
def heldout_tokens(vit, pix):
    """The ViT's tokens of held-out pixels, in eval mode, without gradients."""
    vit.eval()
    tokens = vit(pix)
    vit.train()
    return tokens


def dense_accuracy(vit, head, pix, target):
    """Held-out share of the patches whose main non-background class (at
    least a quarter of the patch) the dense head ranks first among the
    non-background classes."""
    return patch_class_accuracy(head, heldout_tokens(vit, pix), target)


@torch.no_grad()
def patch_class_accuracy(head, tokens, target):
    """dense_accuracy for ViT tokens already computed, and its count of patches."""
    pred = head(tokens)[..., 1:].argmax(-1)
    fg = target[..., 1:].max(-1)
    keep = fg.values >= 0.25
    return (pred[keep] == fg.indices[keep]).float().mean().item(), int(keep.sum())


def stage0(data, out):
    """SigLIP: the ViT and a small text tower under the sigmoid loss on
    (scene, caption) pairs; t' = log 10, b = -10 at the start, as in the
    SigLIP paper. Identical captions within a batch count as positives.

    With DENSE > 0 (the shipped model's recipe since session 6: DENSE=5
    STAGE0_LR=2e-3 STAGE0_STEPS=1500, train/run.sh), a
    training-only linear head on the ViT's output tokens also learns, per
    patch, what the renderer put there (the share of background, each
    shape x colour, the sign's panel and each character, from the label
    maps): soft cross-entropy, patches weighted by 1 + DENSE_FG times their
    non-background share, times DENSE. It is saved as dense_head.pt, not
    exported. SigLIP's one caption per picture teaches 10-pixel shapes and
    5x7 glyphs slowly."""
    torch.manual_seed(0)
    random.seed(0)
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    imgs, recs = load_set(os.path.join(data, "scenes"), tok)
    dense_w = float(os.environ.get("DENSE", "0"))
    dense_fg = float(os.environ.get("DENSE_FG", "4"))
    patch = VISION["patch_size"]
    if dense_w > 0:
        dense = load_dense(os.path.join(data, "scenes"), len(imgs))
    caps = {}
    for r in recs:
        if r["task"] == "caption":
            caps[r["images"][0]] = tuple(r["answer"])
    keys = sorted(caps)
    eimgs, erecs = load_set(os.path.join(data, "eval-scenes"), tok)
    ecaps = [tuple(r["answer"]) for r in erecs if r["task"] == "caption"][:256]
    eidx = [r["images"][0] for r in erecs if r["task"] == "caption"][:256]
    epix = to_pixels(eimgs[eidx])
    eids, emask = pad(ecaps)
    if dense_w > 0:
        epix_all, edense = dense_heldout(data, eimgs)
    vit = pali.VisionTower(VISION)
    img_head = nn.Linear(VISION["hidden_size"], 128)
    txt = TextTower(tok.size())
    t_b = nn.Parameter(torch.tensor([math.log(10.0), -10.0]))
    params = list(vit.parameters()) + list(img_head.parameters()) + list(txt.parameters())
    if dense_w > 0:
        dense_head = nn.Linear(VISION["hidden_size"], DENSE_CLASSES)
        params += list(dense_head.parameters())
    opt = torch.optim.AdamW([dict(params=params, weight_decay=1e-4), dict(params=[t_b], weight_decay=0.0)], lr=1e-3)
    steps = int(os.environ.get("STAGE0_STEPS", "400"))
    bs = int(os.environ.get("STAGE0_BATCH", "128"))
    peak = float(os.environ.get("STAGE0_LR", "1e-3"))
    t0 = time.time()
    acc, spread = siglip_retrieval(vit, img_head, txt, epix, eids, emask, ecaps)
    log(out, f"stage0 init: held-out i2t@1 {acc:.3f} (of {len(ecaps)}) spread {spread:.3f}")
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak, 100)
        batch = random.sample(keys, bs)
        pix = to_pixels(imgs[batch])
        ids, mask = pad([caps[k] for k in batch])
        with amp():
            tokens = vit(pix)
            zi = F.normalize(img_head(tokens.mean(1)).float(), dim=-1)
            zt = F.normalize(txt(ids, mask).float(), dim=-1)
        logits = zi @ zt.T * t_b[0].exp() + t_b[1]
        same = torch.tensor([[caps[a] == caps[b] for b in batch] for a in batch], dtype=torch.float32)
        labels = 2 * same - 1
        loss = -F.logsigmoid(labels * logits).sum() / bs
        dloss = torch.zeros(())
        if dense_w > 0:
            with amp():
                dloss = dense_loss(dense_head, tokens, dense_targets(dense[batch], patch), dense_fg)
            loss = loss + dense_w * dloss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            acc, spread = siglip_retrieval(vit, img_head, txt, epix, eids, emask, ecaps)
            dense_msg = ""
            if dense_w > 0:
                dacc, dn = dense_accuracy(vit, dense_head, epix_all, edense)
                dense_msg = f" dense {dloss.item():.4f} held-out patch class {dacc:.3f} (of {dn})"
            log(out, f"stage0 step {step} loss {loss.item():.4f} held-out i2t@1 {acc:.3f} spread {spread:.3f} "
                     f"t {t_b[0].exp().item():.1f} b {t_b[1].item():.1f}{dense_msg} {time.time() - t0:.0f}s")
    torch.save(vit.state_dict(), os.path.join(out, "vit.pt"))
    if dense_w > 0:
        torch.save(dense_head.state_dict(), os.path.join(out, "dense_head.pt"))


def stage0_dense(data, out):
    """Continues a dense stage 0 (DENSE > 0) on the dense loss alone:
    starts from OUT/vit.pt and OUT/dense_head.pt, keeps the SigLIP ViT as
    vit-siglip.pt and writes the continued one as vit.pt, for stage 1.
    Batches of 64, AdamW, peak lr STAGE0D_LR after 50 warm-up steps, then
    cosine; STAGE0D_STEPS steps. The dense loss alone costs about 0.4 s a
    step here, against 1.1 s with the SigLIP text tower."""
    torch.manual_seed(0)
    random.seed(0)
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    imgs, _ = load_set(os.path.join(data, "scenes"), tok)
    dense = load_dense(os.path.join(data, "scenes"), len(imgs))
    eimgs, _ = load_set(os.path.join(data, "eval-scenes"), tok)
    patch = VISION["patch_size"]
    dense_fg = float(os.environ.get("DENSE_FG", "4"))
    epix, edense = dense_heldout(data, eimgs)
    head = nn.Linear(VISION["hidden_size"], DENSE_CLASSES)
    # STAGE0D_FROM=CKPT: instead, a whole model's ViT (train.py motion's
    # OUT/pali-motion.pt) and the dense head beside it (dense_head.pt, or
    # STAGE0D_HEAD_FROM), with STAGE0D_VIT_ADD=n new layers at the end
    # (append_vit_layers); the model with the continued ViT is written as
    # OUT/pali.pt, for a motion run to go on from. Session 21: does a
    # deeper ViT name shapes better?
    model = None

    def shapes():  # the objects' shape accuracy of vit and head, in %
        return shape_percent(object_shapes(data, dense_logprobs(vit, head, eimgs)))

    if os.environ.get("STAGE0D_FROM"):
        src = os.environ["STAGE0D_FROM"]
        state = torch.load(src)
        enc_layers, buckets, vit_layers = shape_of(state)
        add = int(os.environ.get("STAGE0D_VIT_ADD", "0"))
        model = new_model(tok, enc_layers, buckets, vit_layers + add)
        model.load_state_dict(append_vit_layers(state, model, add))
        vit = model.vision_tower
        os.makedirs(out, exist_ok=True)
        # STAGE0D_HEAD_FIT=n: a fresh dense head fitted first, n steps
        # (fit_dense_head), for a model read back by train.py import.
        fit = int(os.environ.get("STAGE0D_HEAD_FIT", "0"))
        if fit:
            log(out, f"stage0-dense: dense head fitted, loss {fit_dense_head(head, vit, imgs, dense, fit, dense_fg):.4f}")
        else:
            head.load_state_dict(torch.load(os.environ.get("STAGE0D_HEAD_FROM")
                                            or os.path.join(os.path.dirname(src), "dense_head.pt")))
        log(out, f"stage0-dense: {src}'s ViT, {vit_layers + add} layers ({add} new); "
                 f"objects' shape {shapes():.1f}%")
    else:
        vit = pali.VisionTower(VISION)
        vit.load_state_dict(torch.load(os.path.join(out, "vit.pt")))
        head.load_state_dict(torch.load(os.path.join(out, "dense_head.pt")))
        shutil.copy(os.path.join(out, "vit.pt"), os.path.join(out, "vit-siglip.pt"))
    params = list(vit.parameters()) + list(head.parameters())
    # STAGE0D_CENTRE=w: plus w times centre_loss of a centre head
    # (STAGE0D_CENTRE_FROM's, or fresh), saved as centre_head.pt.
    centre_w = float(os.environ.get("STAGE0D_CENTRE", "0"))
    if centre_w > 0:
        centres = load_centres(os.path.join(data, "scenes"), len(imgs), patch)
        ecentres = load_centres(os.path.join(data, "eval-scenes"), len(eimgs), patch)[:len(epix)]
        chead = new_centre_head(os.environ.get("STAGE0D_CENTRE_FROM"))
        params += list(chead.parameters())
    peak = float(os.environ.get("STAGE0D_LR", "1e-3"))
    opt = torch.optim.AdamW(params, lr=peak, weight_decay=1e-4)
    steps = int(os.environ.get("STAGE0D_STEPS", "2000"))
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak, 50)
        batch = random.sample(range(len(imgs)), 64)
        with amp():
            tokens = vit(to_pixels(imgs[batch]))
            loss = dense_loss(head, tokens, dense_targets(dense[batch], patch), dense_fg)
            if centre_w > 0:
                closs = centre_loss(chead, tokens, centres[batch])
                loss = loss + centre_w * closs
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 250 == 249 or step == steps - 1:
            etokens = heldout_tokens(vit, epix)
            acc, n = patch_class_accuracy(head, etokens, edense)
            cmsg = ""
            if centre_w > 0:
                cmsg = " centre loss {:.4f} held-out RMSE x {:.2f} y {:.2f} px".format(
                    closs.item(), *centre_error(chead, etokens, ecentres))
            log(out, f"stage0-dense step {step} loss {loss.item():.4f} held-out patch class {acc:.3f} (of {n}) "
                     f"{time.time() - t0:.0f}s{cmsg}")
    torch.save(vit.state_dict(), os.path.join(out, "vit.pt"))
    torch.save(head.state_dict(), os.path.join(out, "dense_head.pt"))
    if centre_w > 0:
        torch.save(chead.state_dict(), os.path.join(out, "centre_head.pt"))
    if model is not None:
        torch.save(plain_state(model), os.path.join(out, "pali.pt"))
        log(out, f"stage0-dense: objects' shape {shapes():.1f}%")


# ----------------------------------------------------------------------------
# stage 1: projector + T5 on the task mixture, ViT frozen
# stage 2: everything trained, ViT included (PaLI-3's later stages unfreeze it)


@torch.no_grad()
def vit_features(vit, imgs, bs=256):
    vit.eval()
    feats = []
    for i in range(0, len(imgs), bs):
        feats.append(vit(to_pixels(imgs[i:i + bs])).half())
    return torch.cat(feats)


def load_subset(data, name, tok, items=None):
    """The images and records of the first items scenes (or clips) of a set."""
    imgs, recs = load_set(os.path.join(data, name), tok)
    if items:
        per = len(recs[0]["images"])
        imgs = imgs[:items * per]
        recs = [r for r in recs if max(r["images"]) < items * per]
    return imgs, recs


def load_features(data, out, name, vit, tok, items=None):
    """ViT features of the first items scenes (or clips) of a set, cached in OUT."""
    imgs, recs = load_subset(data, name, tok, items)
    path = os.path.join(out, name + ".feat.pt")
    if os.path.exists(path):
        feats = torch.load(path)
    else:
        t0 = time.time()
        feats = vit_features(vit, imgs)
        os.makedirs(out, exist_ok=True)
        torch.save(feats, path)
        log(out, f"features {name}: {tuple(feats.shape)} in {time.time() - t0:.0f}s")
    return feats, recs


def batch_inputs(feats, recs):
    vis = torch.stack([feats[r["images"]].reshape(-1, feats.shape[-1]) for r in recs]).float()
    ids, mask = pad([r["prompt"] for r in recs])
    return vis, ids, mask


def pixel_inputs(vit, imgs, recs):
    """As batch_inputs, but the ViT runs (with gradients) on the pixels."""
    idx = [i for r in recs for i in r["images"]]
    f = vit(to_pixels(imgs[idx]))
    vis = f.reshape(len(recs), -1, f.shape[-1])
    ids, mask = pad([r["prompt"] for r in recs])
    return vis, ids, mask


TASK_WEIGHT = {"caption": 2.0, "ocr": 3.0, "count": 1.5, "color": 1.0, "exists": 1.0, "where": 1.0}
TASK_WEIGHT3 = {"caption": 1.0, "ocr": 1.5, "count": 1.5, "color": 1.0, "exists": 1.0, "where": 1.0}


def new_model(tok, enc_layers=None, buckets=None, vit_layers=None):
    """A fresh model with TEXT's T5, or one with enc_layers encoder blocks
    (train.py motion's MOTION_ENC_ADD makes such a model) or buckets
    relative position buckets (MOTION_BUCKETS; text_config), and VISION's
    ViT or one of vit_layers layers (MOTION_VIT_ADD)."""
    torch.manual_seed(1)
    cfg = text_config(tok, enc_layers, buckets)
    model = pali.PaLI(vision_config(vit_layers), cfg)
    return model


def vision_config(vit_layers=None):
    """VISION, with vit_layers layers if given."""
    return dict(VISION, num_hidden_layers=vit_layers) if vit_layers else dict(VISION)


def text_config(tok, enc_layers=None, buckets=None):
    """TEXT for tok's vocabulary, with enc_layers encoder blocks and
    buckets relative position buckets if given. More buckets than TEXT's
    32 come with a maximum distance of twice their number, so that
    offsets below a quarter of it each have a bucket of their own
    (exact_buckets)."""
    cfg = dict(TEXT, vocab_size=tok.size())
    if enc_layers:
        cfg["num_layers"] = enc_layers
    if buckets:
        cfg["relative_attention_num_buckets"] = buckets
        cfg["relative_attention_max_distance"] = max_distance(buckets)
    return cfg


def max_distance(buckets):
    """The relative position maximum distance that goes with a bucket
    count: TEXT's for TEXT's 32 buckets, else twice the count."""
    if buckets == TEXT["relative_attention_num_buckets"]:
        return TEXT["relative_attention_max_distance"]
    return 2 * buckets


ENC_BLOCK = "language_model.encoder.block."
REL_BIAS = "block.0.layer.0.SelfAttention.relative_attention_bias.weight"


def shape_of(state):
    """The encoder blocks, relative position buckets and ViT layers of a
    checkpoint (new_model's arguments)."""
    return enc_layers_of(state), state["language_model.encoder." + REL_BIAS].shape[0], vit_layers_of(state)


VIT_LAYER = "vision_tower.vision_model.encoder.layers."


def vit_layers_of(state, prefix=VIT_LAYER):
    """The number of ViT layers a checkpoint holds (prefix: the layers'
    names up to their number; a bare ViT's state dict's is
    VIT_LAYER without "vision_tower.")."""
    return 1 + max(int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix))


def append_vit_layers(state, model, n):
    """state (a checkpoint of model's layout less n ViT layers) moved onto
    model, n fresh ViT layers after the old ones (before the post-layernorm).
    Their attention and MLP outputs (out_proj, fc2, weights and biases)
    start at zero, so each passes its input through and the model answers
    as before until they learn."""
    fresh = model.state_dict()
    out = dict(state)
    for k, v in fresh.items():
        if k not in out:
            assert k.startswith(VIT_LAYER), k
            zero = ".self_attn.out_proj." in k or ".mlp.fc2." in k
            out[k] = torch.zeros_like(v) if zero else v.clone()
    return out


def exact_buckets(state, cfg):
    """state's relative position bias tables (encoder and decoder) moved
    to cfg's buckets: each new bucket takes the bias of the old bucket of
    an offset it holds, so that the model computes what it did for every
    offset below cfg's maximum exact one. With buckets enough that every
    offset of a 16-frame clip (64 tokens a frame, 1,024 in all, and the
    prompt) has its own, a head can learn to look one row up (-8) or one
    column left (-1) in another frame, which the 32 buckets, one for all
    offsets from 56 to 72, cannot (docs/demo-model.md, session 18)."""
    nb, md = cfg["relative_attention_num_buckets"], cfg["relative_attention_max_distance"]
    out = dict(state)
    for side, bidir in (("encoder", True), ("decoder", False)):
        key = f"language_model.{side}.{REL_BIAS}"
        old = state[key]
        rel = torch.arange(-4 * nb, 4 * nb + 1)
        ob = pali.relative_bucket(rel, bidir, old.shape[0], max_distance(old.shape[0]))
        new = pali.relative_bucket(rel, bidir, nb, md)
        table = torch.zeros(nb, old.shape[1], dtype=old.dtype)
        # Offsets from far to near: each new bucket ends up with its
        # nearest offset's old bias.
        for i in rel.abs().argsort(descending=True, stable=True).tolist():
            table[new[i]] = old[ob[i]]
        out[key] = table
    return out


def enc_layers_of(state):
    """The number of T5 encoder blocks a checkpoint holds."""
    return 1 + max(int(k[len(ENC_BLOCK):].split(".")[0]) for k in state if k.startswith(ENC_BLOCK))


def prepend_enc_blocks(state, model, n):
    """state (a checkpoint of model's layout less n encoder blocks) moved
    onto model, n fresh encoder blocks in front of the old ones: block i
    becomes block i+n and the relative position bias (T5 computes it in
    the first block and every block adds it) moves to the new block 0.
    The new blocks' attention output and feed-forward output start at
    zero, so they pass their input through and the model answers as
    before until they learn."""
    fresh = model.state_dict()
    out = {}
    for k, v in state.items():
        if k.startswith(ENC_BLOCK):
            if k == "language_model.encoder." + REL_BIAS:
                out[k] = v  # stays on block 0, now a new one
                continue
            i, rest = k[len(ENC_BLOCK):].split(".", 1)
            k = f"{ENC_BLOCK}{int(i) + n}.{rest}"
        out[k] = v
    for k, v in fresh.items():
        if k not in out:
            zero = k.endswith(("SelfAttention.o.weight", "DenseReluDense.wo.weight"))
            out[k] = torch.zeros_like(v) if zero else v.clone()
    return out


class Regularizer(nn.Module):
    """Training-only terms added to the answer loss (stage 4), none of
    which changes the exported model:

    - zloss times the mean squared attention score of every T5 attention
      (pali.T5Attention.logit_penalty), so that no head saturates. In the
      stage-3 model, two of the four cross-attention heads of the first
      decoder layer put less than 1e-20 of their weight on the picture
      and the others are nearly one-hot: softmax gradients vanish there,
      and fine-tuning on "where" alone did not move its loss from chance.
    - aux times the cross-entropy of linear probes that read, from each
      visual token of the T5 encoder's output, its patch index and (clips)
      its frame index. In the stage-3 model a linear probe found the patch
      index in 99.8% of the projected ViT tokens but in only 18.8% of the
      encoder's outputs (train.py diagnose), so "where" and motion had
      nothing to read.

    The probes are dropped at export. Both terms did what they aim at
    (train.py diagnose on stage 4's model: the patch index is read from
    100% of the encoder's outputs, the scores are soft) but the answers
    did not improve; docs/demo-model.md has the numbers."""

    def __init__(self, model, zloss, aux, patches, frames):
        super().__init__()
        self.zloss, self.aux, self.patches = zloss, aux, patches
        self.scores = []
        for m in model.language_model.modules():
            if isinstance(m, pali.T5Attention):
                m.logit_penalty = self.scores if zloss > 0 else None
        d = model.language_model.cfg["d_model"]
        self.patch = nn.Linear(d, patches)
        self.frame = nn.Linear(d, frames)

    def forward(self, enc, nvis):
        extra = torch.zeros(())
        if self.zloss > 0:
            extra = extra + self.zloss * sum(self.scores) / len(self.scores)
        self.scores.clear()
        if self.aux > 0:
            extra = extra + self.aux * self.probe_loss(enc, nvis)
        return extra

    def probe_loss(self, enc, nvis):
        """The probes' cross-entropy, unweighted, on the first nvis tokens."""
        b, P = enc.shape[0], self.patches
        nf = nvis // P
        v = enc[:, :nvis].reshape(b * nvis, -1)
        loss = F.cross_entropy(self.patch(v), torch.arange(P).repeat(b * nf))
        if nf > 1:
            frame = torch.arange(nf).repeat_interleave(P).repeat(b)
            loss = loss + F.cross_entropy(self.frame(v), frame)
        return loss


def lm_loss(model, vis, ids, mask, batch, per_answer=False, reg=None, keep=None):
    """Cross-entropy of the answers, averaged over answer tokens, or with
    per_answer over answers (each answer's mean over its tokens), so that
    long answers (captions) do not outweigh one-word ones; plus reg's
    terms when given."""
    tgt, tmask = pad([r["answer"] for r in batch])
    dec_in = torch.cat([torch.zeros(len(batch), 1, dtype=torch.long), tgt[:, :-1]], 1)
    labels = tgt.masked_fill(tmask == 0, -100)
    enc, emask = model.encode(vis, ids, mask)
    if keep is not None:
        keep["enc"] = enc
    logits = model.decode_logits(enc, emask, dec_in).float()  # a no-op unless under amp()
    if per_answer:
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100,
                             reduction="none").reshape(tgt.shape)
        if per_answer == "sum":
            # Each answer's summed token loss: the one token that decides
            # "right" (the second of six: "▁ r ig h t") is not divided by
            # the five its first letters make certain.
            loss = (ce * tmask).sum(1).mean()
        else:
            loss = ((ce * tmask).sum(1) / tmask.sum(1)).mean()
    else:
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
    if reg is not None:
        loss = loss + reg(enc, vis.shape[1])
    return loss


QK = 32  # Q8_0's block: 32 values share one f16 scale (neon.Quantize)


def fake_q8(x):
    """x rounded as palid's Q8_0 stores it, blocks of 32 along the last
    dimension: d = amax/127 (kept as f16), q = round(x/d). The gradient
    passes straight through (x + (q(x) - x).detach())."""
    b = x.reshape(*x.shape[:-1], x.shape[-1] // QK, QK)
    d = b.abs().amax(-1, keepdim=True) / 127
    q = torch.round(b / torch.where(d > 0, d, torch.ones_like(d))).clamp(-127, 127)
    y = (q * d.half().float()).reshape(x.shape)
    return x + (y - x).detach()


class FakeQ8(nn.Module):
    """A parametrization: the weight seen in the forward pass is its Q8_0 rounding."""

    def forward(self, w):
        return fake_q8(w)


def quant_aware(model):
    """Trains model as palid's Q8_0 runs it: every weight the converter
    quantizes (the linear layers and the token embedding) is seen rounded to
    Q8_0, and the input of every linear layer too (palid quantizes the
    activations to Q8_0 for its int8 dot products). plain_state gives the
    rounded weights to save."""
    import torch.nn.utils.parametrize as P
    for m in model.modules():
        if isinstance(m, nn.Linear):
            P.register_parametrization(m, "weight", FakeQ8())
            m.register_forward_pre_hook(lambda _, inp: (fake_q8(inp[0]),) + inp[1:])
    P.register_parametrization(model.language_model.shared, "weight", FakeQ8())


def plain_state(model):
    """model's state dict under the usual names; a parametrized weight is
    saved as the forward pass sees it (Q8_0-rounded, so that palid's Q8_0
    conversion of it is exact)."""
    sd = {}
    for name, t in model.state_dict().items():
        if ".parametrizations.weight.original" in name:
            owner = name.replace(".parametrizations.weight.original", "")
            mod = model.get_submodule(owner)
            sd[owner + ".weight"] = mod.weight.detach().clone()
        else:
            sd[name] = t
    return sd


def stage1(data, out):
    random.seed(1)
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    model = new_model(tok)
    if os.environ.get("VIT", "stage0") == "init":
        # The seeded initial ViT (what stage 0 starts from), for comparison.
        torch.manual_seed(0)
        model.vision_tower.load_state_dict(pali.VisionTower(VISION).state_dict())
        log(out, "stage1: ViT = seeded initialisation (VIT=init)")
    else:
        model.vision_tower.load_state_dict(torch.load(os.path.join(out, "vit.pt")))
    for p in model.vision_tower.parameters():
        p.requires_grad = False
    sfeat, srecs = load_features(data, out, "scenes", model.vision_tower, tok,
                                 int(os.environ.get("SCENES", "30000")))
    cfeat, crecs = load_features(data, out, "clips", model.vision_tower, tok,
                                 int(os.environ.get("CLIPS", "4000")))
    # STAGE1_PER_ANSWER=1 weighs answers, not tokens, and STAGE1_ZLOSS
    # keeps the attention scores soft from the first step (training only):
    # a head that saturates early never learns to look at the picture
    # (docs/demo-model.md, "Why training stalls"). Both are off by default;
    # the shipped model's recipe turns them on (train/run.sh).
    per_answer = os.environ.get("STAGE1_PER_ANSWER", "0") == "1"
    task_weight = TASK_WEIGHT3 if per_answer else TASK_WEIGHT
    weights = [task_weight.get(r["task"], 1.0) for r in srecs]
    zloss = float(os.environ.get("STAGE1_ZLOSS", "0"))
    reg = Regularizer(model, zloss, 0, 1, 1) if zloss > 0 else None
    params = [p for p in model.parameters() if p.requires_grad]
    peak = float(os.environ.get("STAGE1_LR", "2e-3"))
    opt = torch.optim.AdamW(params, lr=peak, weight_decay=1e-4)
    steps = int(os.environ.get("STAGE1_STEPS", "800"))
    clip_every = int(os.environ.get("CLIP_EVERY", "4"))
    eval_every = int(os.environ.get("EVAL_EVERY", "0"))
    sbs, cbs = 64, 8
    t0 = time.time()
    ema = {}
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak, 200)
        if step % clip_every == clip_every - 1:
            batch, kind = random.sample(crecs, cbs), "clip"
            vis, ids, mask = batch_inputs(cfeat, batch)
        else:
            batch, kind = random.choices(srecs, weights, k=sbs), "scene"
            vis, ids, mask = batch_inputs(sfeat, batch)
        with amp():
            loss = lm_loss(model, vis, ids, mask, batch, per_answer, reg)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema[kind] = loss.item() if kind not in ema else 0.95 * ema[kind] + 0.05 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            log(out, f"stage1 step {step} scene {ema.get('scene', 0):.4f} clip {ema.get('clip', 0):.4f} "
                     f"lr {opt.param_groups[0]['lr']:.2e} {time.time() - t0:.0f}s")
        if eval_every and step % eval_every == eval_every - 1:
            model.eval()
            log(out, f"stage1 step {step} held-out (first 40): " + json.dumps(evaluate_model(data, out, tok, model, 40)))
            model.train()
        if step % 1000 == 999:
            torch.save(model.state_dict(), os.path.join(out, "pali1.pt"))
    torch.save(model.state_dict(), os.path.join(out, "pali1.pt"))
    shutil.copy(os.path.join(out, "pali1.pt"), os.path.join(out, "pali.pt"))


# What stages 6 to 11 share: the dense head on, "where" and counts sampled
# 3x and 2x, a clip batch every other step, the ViT at the full rate.
DENSE_STAGE = dict(CLIP_EVERY="2", CLIP_BATCH="4", WARMUP="100", VIT_SCALE="1.0", ZLOSS="0", AUX="0",
                   DENSE="1", WEIGHTS="where=3,count=2")

# The joint stages' settings (train.py stageN; each overridable as
# STAGEn_KEY). Stage 3 weighs answers, not tokens (per_answer), and trains
# the ViT at the full rate: in stage 2 the loss was dominated by the sign's
# characters in captions and ocr, and the one-word tasks barely moved.
JOINT_STAGES = {2: dict(LR="5e-4", STEPS="600", CLIP_EVERY="5", CLIP_BATCH="4", WARMUP="100",
                        VIT_SCALE="0.5", PER_ANSWER="0", ZLOSS="0", AUX="0"),
                3: dict(LR="1e-3", STEPS="2400", CLIP_EVERY="4", CLIP_BATCH="4", WARMUP="100",
                        VIT_SCALE="1.0", PER_ANSWER="1", ZLOSS="0", AUX="0"),
                4: dict(LR="1e-3", STEPS="2000", CLIP_EVERY="3", CLIP_BATCH="4", WARMUP="100",
                        VIT_SCALE="1.0", PER_ANSWER="1", ZLOSS="1e-2", AUX="0.3"),
                5: dict(LR="3e-4", STEPS="1000", CLIP_EVERY="2", CLIP_BATCH="4", WARMUP="50",
                        VIT_SCALE="0.5", PER_ANSWER="1", ZLOSS="0", AUX="0"),
                6: dict(DENSE_STAGE, LR="5e-4", STEPS="2000", PER_ANSWER="1"),
                7: dict(DENSE_STAGE, LR="3e-4", STEPS="1200", PER_ANSWER="sum"),
                8: dict(DENSE_STAGE, LR="3e-4", STEPS="1200", PER_ANSWER="sum"),
                9: dict(DENSE_STAGE, LR="5e-4", STEPS="1500", PER_ANSWER="sum"),
                10: dict(DENSE_STAGE, LR="3e-4", STEPS="800", PER_ANSWER="sum",
                         WEIGHTS="where=3,count=3,ocr=4"),
                11: dict(DENSE_STAGE, LR="3e-4", STEPS="800", PER_ANSWER="sum",
                         WEIGHTS="where=3,count=3,ocr=4,count:2=4,count:3=8")}


def stage2(data, out, stage=2):
    """Everything trained together, the ViT included (PaLI-3 unfreezes the
    image encoder after its first multimodal stage). Stage 2 starts from
    stage 1's model at a lower learning rate; stage 3 is the long run, from
    stage 2's model, with more clip questions. Stages 4 to 11 continue the
    previous one with the settings in JOINT_STAGES (each overridable as
    STAGEn_KEY): stage 6 puts stage 0's dense head back on the ViT, stages 7
    and 8 sum each answer's token losses (docs/demo-model.md, session 7),
    stages 9 to 11 do the same on the second tokenizer (session 8).
    STAGEn_QAT=1 trains it quantization-aware (quant_aware; tried in
    session 9, not shipped)."""
    E = f"STAGE{stage}_"
    defaults = JOINT_STAGES[stage]
    env = lambda k: os.environ.get(E + k, defaults.get(k, ""))
    # STAGEn_SEED (default n): a run continuing a checkpoint with the same
    # stage number needs a new seed, or it draws the same batches again.
    seed = int(env("SEED") or stage)
    random.seed(seed)
    torch.manual_seed(seed)
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    model = new_model(tok)
    # STAGEn_FROM=file: the model to continue (default OUT/pali{n-1}.pt),
    # so that a run can start from another run's model without copies.
    model.load_state_dict(torch.load(env("FROM") or os.path.join(out, f"pali{stage - 1}.pt")))
    if env("QAT") == "1":
        quant_aware(model)
    per_answer = {"0": False, "1": True, "sum": "sum"}[env("PER_ANSWER")]
    task_weight = dict(TASK_WEIGHT if stage == 2 else TASK_WEIGHT3)
    # STAGEn_WEIGHTS=task=w,...: the sampling weight of single-frame tasks;
    # task:answer=w multiplies it for the questions with that answer.
    answer_weight = {}
    for kv in filter(None, env("WEIGHTS").split(",")):
        k, v = kv.split("=")
        if ":" in k:
            answer_weight[tuple(k.split(":", 1))] = float(v)
        else:
            task_weight[k] = float(v)
    zloss, aux = float(env("ZLOSS")), float(env("AUX"))
    reg = None
    if zloss > 0 or aux > 0:
        per = (VISION["image_size"] // VISION["patch_size"]) ** 2
        reg = Regularizer(model, zloss, aux, per, 16)
    simgs, srecs = load_subset(data, "scenes", tok, int(os.environ.get("SCENES", "30000")))
    cimgs, crecs = load_subset(data, "clips", tok, int(os.environ.get("CLIPS", "4000")))
    weights = [task_weight.get(r["task"], 1.0) * answer_weight.get((r["task"], r["text"]), 1.0) for r in srecs]
    vit_params = list(model.vision_tower.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("vision_tower.")]
    if reg is not None:
        rest += list(reg.parameters())
    # STAGEn_DENSE=w keeps stage 0's dense head (OUT/dense_head.pt, training
    # only, not exported) on the ViT's tokens of every scene batch, so that
    # the joint stage goes on teaching the shapes under each patch instead
    # of letting the answer loss alone move the ViT.
    dense_w = float(env("DENSE") or "0")
    # STAGEn_ROWS=w: rows_loss on the T5 encoder's output, weight w (a
    # training-only linear head, not exported).
    rows_w = float(env("ROWS") or "0")
    if dense_w > 0 or rows_w > 0:  # both read the scenes' label maps
        patch = VISION["patch_size"]
        dense = load_dense(os.path.join(data, "scenes"), len(simgs))
    if dense_w > 0:
        dense_head = nn.Linear(VISION["hidden_size"], DENSE_CLASSES)
        # STAGEn_HEAD_FROM=file, else the head a previous dense joint stage
        # left in OUT, else stage 0's.
        prev = env("HEAD_FROM") or os.path.join(out, f"dense_head{stage - 1}.pt")
        if not env("HEAD_FROM") and not os.path.exists(prev):
            prev = os.path.join(out, "dense_head.pt")
        dense_head.load_state_dict(torch.load(prev))
        rest += list(dense_head.parameters())
        dense_fg = float(os.environ.get("DENSE_FG", "4"))
        epix, edense = dense_heldout(data, load_set(os.path.join(data, "eval-scenes"), tok)[0])
        held_out = lambda: dense_accuracy(model.vision_tower, dense_head, epix, edense)[0]
        log(out, f"stage{stage} dense head: held-out patch class {held_out():.3f}")
    if rows_w > 0:
        rows_head = nn.Linear(TEXT["d_model"], 2 * (VISION["image_size"] // patch))
        rest += list(rows_head.parameters())
    # STAGEn_FLIP_WHERE=p: each "where" question of a scene batch is asked,
    # with probability p, of its picture upside down, "top" and "bottom"
    # swapped (flip_vertical).
    flip_where = float(env("FLIP_WHERE") or "0")
    updown = tok.encode_all(["top", "bottom"]) if flip_where > 0 else {}
    peak = float(env("LR"))
    opt = torch.optim.AdamW([dict(params=vit_params, scale=float(env("VIT_SCALE"))), dict(params=rest, scale=1.0)],
                            lr=peak, weight_decay=1e-4)
    steps = int(env("STEPS"))
    clip_every = int(env("CLIP_EVERY"))
    warm = int(env("WARMUP"))
    sbs, cbs = 64, int(env("CLIP_BATCH"))
    t0 = time.time()
    ema = {}
    params = vit_params + rest
    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak, warm) * g["scale"]
        if step % clip_every == clip_every - 1:
            batch, kind = random.sample(crecs, cbs), "clip"
            bimgs = cimgs
        else:
            batch, kind = random.choices(srecs, weights, k=sbs), "scene"
            bimgs, src = simgs, [r["images"][0] for r in batch]
            if flip_where > 0:
                batch, bimgs, flipped = flip_vertical(batch, simgs, flip_where, updown)
        keep = {}
        with amp():
            vis, ids, mask = pixel_inputs(model.vision_tower, bimgs, batch)
            loss = lm_loss(model, vis, ids, mask, batch, per_answer, reg, keep)
        answer_loss = loss.item()
        if (rows_w > 0 or dense_w > 0) and kind == "scene":
            # The label maps of the pictures as the ViT saw them.
            maps = dense[src]
            if flip_where > 0:
                maps = np.where(flipped[:, None, None], maps[:, ::-1], maps)
            target = dense_targets(np.ascontiguousarray(maps), patch)
        if rows_w > 0 and kind == "scene":
            with amp():
                rl = rows_loss(rows_head, keep["enc"][:, :vis.shape[1]], target)
            ema["rows"] = rl.item() if "rows" not in ema else 0.95 * ema["rows"] + 0.05 * rl.item()
            loss = loss + rows_w * rl
        if dense_w > 0 and kind == "scene":
            with amp():
                dl = dense_loss(dense_head, vis, target, dense_fg)
            ema["dense"] = dl.item() if "dense" not in ema else 0.95 * ema["dense"] + 0.05 * dl.item()
            loss = loss + dense_w * dl
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema[kind] = answer_loss if kind not in ema else 0.95 * ema[kind] + 0.05 * answer_loss
        if step % 100 == 0 or step == steps - 1:
            msg = ""
            if rows_w > 0:
                msg += f" rows {ema.get('rows', 0):.4f}"
            if dense_w > 0:
                msg += f" dense {ema.get('dense', 0):.4f}"
                if step % 500 == 0 or step == steps - 1:
                    msg += f" held-out patch class {held_out():.3f}"
            log(out, f"stage{stage} step {step} scene {ema.get('scene', 0):.4f} clip {ema.get('clip', 0):.4f}{msg} "
                     f"lr {opt.param_groups[1]['lr']:.2e} {time.time() - t0:.0f}s")
        if step % 100 == 99:
            torch.save(plain_state(model), os.path.join(out, f"pali{stage}-partial.pt"))
    torch.save(plain_state(model), os.path.join(out, f"pali{stage}.pt"))
    if dense_w > 0:
        torch.save(dense_head.state_dict(), os.path.join(out, f"dense_head{stage}.pt"))
    shutil.copy(os.path.join(out, f"pali{stage}.pt"), os.path.join(out, "pali.pt"))


def rows_loss(head, enc, target):
    """Cross-entropy of a linear head that reads, from the T5 encoder's
    output at each object patch (at least half covered by objects), the
    patch's row and its column. Session 9 found that the encoder's output
    kept the column of object patches (95%) but lost the row (35%), and
    "top" / "bottom" were answered at chance (docs/demo-model.md). target
    (dense_targets) is that of the pictures as the ViT saw them, turned
    over or not."""
    b, n, _ = enc.shape
    g = int(round(n ** 0.5))
    obj = target[..., 1:DENSE_PANEL].sum(-1) >= 0.5
    if not obj.any():
        return enc.sum() * 0
    where = torch.arange(n).expand(b, -1)[obj]
    logits = head(enc[obj])
    return F.cross_entropy(logits[:, :g], where // g) + F.cross_entropy(logits[:, g:], where % g)


def higher_questions(dense, recs, tok, gap=8):
    """Extra single-frame questions that compare two objects' heights:
    "answer en which is higher, the red star or the purple square?" ->
    "red star", one per scene with two objects of different descriptions
    whose mean rows (in dense, the label map where each shape x colour
    has its own class) lie at least gap pixels apart; the order of the two
    in the question drawn per scene (seeded by the scene's seed). The
    captions list objects left to right and so teach the encoder to compare
    columns, which the horizontal directions reuse; nothing asked compared
    rows, and the vertical directions stayed near chance
    (docs/demo-model.md, session 18). recs: the scene records of load_set,
    whose image indices index dense."""
    seeds = {r["images"][0]: r["seed"] for r in recs}
    name = lambda c: f"{COLORS[(c - 1) % len(COLORS)]} {SHAPES[(c - 1) // len(COLORS)]}"
    qs = []
    for i in sorted(seeds):
        d = dense[i]
        present = [int(c) for c in np.unique(d) if 1 <= c < DENSE_PANEL]
        if len(present) < 2:
            continue
        a, b = random.Random(seeds[i]).sample(present, 2)
        ya, yb = np.nonzero(d == a)[0].mean(), np.nonzero(d == b)[0].mean()
        if abs(ya - yb) < gap:
            continue
        qs.append((i, seeds[i], f"answer en which is higher, the {name(a)} or the {name(b)}?",
                   name(a if ya < yb else b)))
    enc = tok.encode_all([q for _, _, q, _ in qs] + [a for _, _, _, a in qs])
    return [dict(images=[i], prompt=enc[q] + [EOS], answer=enc[a] + [EOS], text=a, task="higher", seed=s)
            for i, s, q, a in qs]


def flip_vertical(batch, imgs, p, updown):
    """batch (scene records) with each "where" question, with probability
    p, asked of its picture turned upside down: the answer "top" becomes
    "bottom" and the other way round, "left" and "right" stay. Returns the
    records, the pictures they index (the batch's own, [B, H, W, C]) and
    which were flipped. A model that answers both ways must read the
    object's height; the shipped model of session 8 did not (docs)."""
    idx = [r["images"][0] for r in batch]
    flipped = np.array([r["task"] == "where" and random.random() < p for r in batch])
    out = imgs[idx].copy()
    out[flipped] = out[flipped][:, ::-1]
    recs = []
    swap = {"top": "bottom", "bottom": "top"}
    for i, r in enumerate(batch):
        r = dict(r, images=[i])
        if flipped[i] and r["text"] in swap:
            r["text"] = swap[r["text"]]
            r["answer"] = updown[r["text"]] + [EOS]
        recs.append(r)
    return recs, out, flipped


def flip_clips(batch, imgs, tgt, p, updown):
    """batch (clip records), each clip with probability p turned upside
    down in all its frames: a "direction" answer "up" becomes "down" and
    the other way round, and tgt (motion_targets of the batch's frames,
    [B, frames, grid*grid]) has its rows reversed and its up and down
    classes swapped. Returns the records, the pictures they index (the
    batch's own frames, [B*frames, H, W, C]) and the targets. The same clip
    then moves both ways: only the sign of the row change tells the two
    apart (the vertical directions stayed near chance, docs/demo-model.md,
    session 19)."""
    idx = [i for r in batch for i in r["images"]]
    n = len(batch[0]["images"])
    out = imgs[idx].copy()
    tgt = tgt.clone()
    g = int(round(tgt.shape[-1] ** 0.5))
    swap = {"up": "down", "down": "up"}
    recs = []
    for i, r in enumerate(batch):
        r = dict(r, images=list(range(i * n, (i + 1) * n)))
        if random.random() < p:
            out[i * n:(i + 1) * n] = out[i * n:(i + 1) * n, ::-1]
            tgt[i] = UPSIDE_DOWN[tgt[i].reshape(n, g, g).flip(1).reshape(n, -1)]
            if r["task"] == "direction" and r["text"] in swap:
                r["text"] = swap[r["text"]]
                r["answer"] = updown[r["text"]] + [EOS]
        recs.append(r)
    return recs, out, tgt


def clip_events(path):
    """[clips, 2] bool from clips.jsonl: whether anything enters, whether
    anything leaves each clip (what its "enter" and "leave" questions ask)."""
    recs = [json.loads(l) for l in open(os.path.join(path, "clips.jsonl"))]
    return np.array([[any(o["motion"] == m for o in r["objects"]) for m in ("enters", "leaves")]
                     for r in recs])


def reverse_clips(batch, tgt, events, p, words):
    """batch (clip records, their images still in the clip's order), each
    clip with probability p played backwards: its frames in reverse order,
    every "direction" answer the opposite one, "did anything enter?"
    answered by what left the clip and the other way round (events,
    clip_events of the batch's clips, [B, 2]), and tgt (motion_targets of
    the batch's frames, [B, frames, grid*grid]) reversed in time with each
    class's direction turned round and "enters" and "leaves" swapped.
    words maps the answers (left, right, up, down, yes, no) to their
    pieces. Returns the records and the targets.

    A clip played backwards is as real as one played forwards, and it
    breaks the training clips' link between where a thing is and where it
    goes (an object that stays and moves down is mostly in the bottom half:
    720 of 1,021 in data-tok2's clips; the model learnt to answer "up" for
    the top half and "down" for the bottom, docs/demo-model.md, session 20).
    Half of the clips reversed, the position says nothing about the
    direction and only the order of the frames does."""
    tgt = tgt.clone()
    recs = []
    for i, r in enumerate(batch):
        if random.random() < p:
            r = dict(r, images=r["images"][::-1])
            tgt[i] = BACKWARDS[tgt[i].flip(0)]
            if r["task"] == "direction":
                r["text"] = OPPOSITE[r["text"]]
            elif r["task"] in ("enter", "leave"):
                # Backwards, what entered has left and what left has entered.
                r["text"] = "yes" if events[i][1 if r["task"] == "enter" else 0] else "no"
            r["answer"] = words[r["text"]] + [EOS]
        recs.append(r)
    return recs, tgt


def spell(piece, index):
    """The ids of the pieces of index (piece -> id) that spell piece,
    longest match first."""
    ids, at = [], 0
    while at < len(piece):
        for end in range(len(piece), at, -1):
            if piece[at:end] in index:
                ids.append(index[piece[at:end]])
                at = end
                break
        else:
            return [2]  # <unk>: a character the old pieces lack
    return ids


def retokenize(data, out, data2, out2, stage):
    """Moves OUT/paliN.pt from DATA's tokenizer to DATA2's. The rows of the
    embedding and the output layer for a piece both vocabularies hold are
    kept; a new piece (an answer word made one piece, docs/demo-model.md,
    session 8) gets the mean of the rows of the old pieces that spell it.
    The dense head comes along unchanged."""
    old = Tokenizer(os.path.join(data, "spiece.model")).pieces
    tok = Tokenizer(os.path.join(data2, "spiece.model"))
    sd = torch.load(os.path.join(out, f"pali{stage}.pt"))
    os.makedirs(out2, exist_ok=True)
    at = {p: i for i, p in enumerate(old)}
    spellers = {p: i for p, i in at.items() if i > 2}  # not pad, eos, unk
    new = []
    for name in ("language_model.shared.weight", "language_model.lm_head.weight"):
        w = sd[name]
        rows = []
        for i, p in enumerate(tok.pieces):
            if i <= 2 or p in at:
                rows.append(w[i if i <= 2 else at[p]])
            else:
                ids = spell(p, spellers)
                rows.append(w[ids].mean(0))
                if name.endswith("shared.weight"):
                    new.append(f"{p}={' '.join(old[j] for j in ids)}")
        sd[name] = torch.stack(rows).contiguous()
    log(out2, f"retokenize: {len(new)} new pieces: {', '.join(new)}")
    torch.save(sd, os.path.join(out2, f"pali{stage}.pt"))
    head = os.path.join(out, f"dense_head{stage}.pt")
    if os.path.exists(head):
        shutil.copy(head, os.path.join(out2, f"dense_head{stage}.pt"))


# ----------------------------------------------------------------------------
# motion: the clips, with a per-patch motion target


DIRECTIONS = ["left", "right", "up", "down"]
MOTIONS = ["stays", "enters", "leaves"]
MOTION_CLASSES = 1 + len(DIRECTIONS) * len(MOTIONS)


def motion_class(direction, motion):
    """The motion head's class of an object moving in direction (one of
    DIRECTIONS) with motion (one of MOTIONS); class 0 is "no object"."""
    return 1 + len(MOTIONS) * DIRECTIONS.index(direction) + MOTIONS.index(motion)


def class_map(direction, motion={}):
    """[MOTION_CLASSES] int64: each class to that of the object with its
    direction renamed by the dict direction and its motion by motion
    (names missing from a dict stay); 0 stays 0. Indexing targets with it
    renames them all."""
    return torch.tensor([0] + [motion_class(direction.get(d, d), motion.get(m, m))
                               for d in DIRECTIONS for m in MOTIONS])


# Each direction's opposite.
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
# The class maps of a clip turned upside down (flip_clips), played
# backwards (reverse_clips) and transposed (probe-motion's PROBE_AXES=pixels).
UPSIDE_DOWN = class_map({"up": "down", "down": "up"})
BACKWARDS = class_map(OPPOSITE, {"enters": "leaves", "leaves": "enters"})
TRANSPOSED = class_map({"left": "up", "right": "down", "up": "left", "down": "right"})


def smooth(ema, key, value):
    """ema[key], the running mean of a logged figure (weight 0.05 for the newest)."""
    ema[key] = value if key not in ema else 0.95 * ema[key] + 0.05 * value


def motion_targets(path, grid):
    """[clips, frames, grid*grid] int64 from clips.jsonl: 0 where no object
    is, else 1 + 3 * direction + motion of the object whose centre is
    nearest the patch's centre, among those within their size of it (a
    disc of radius Object.Size, about the shape's extent)."""
    recs = [json.loads(l) for l in open(os.path.join(path, "clips.jsonl"))]
    frames = len(recs[0]["frames"])
    c = (np.arange(grid) + 0.5) / grid
    py, px = np.meshgrid(c, c, indexing="ij")
    py, px = py.reshape(-1), px.reshape(-1)
    t = np.arange(frames)[:, None]
    out = np.zeros((len(recs), frames, grid * grid), np.int64)
    for i, r in enumerate(recs):
        best = np.full((frames, grid * grid), np.inf)
        for o in r["objects"]:
            x, y = o["x"] + o["vx"] * t, o["y"] + o["vy"] * t  # [frames, 1]
            d = np.hypot(px - x, py - y) / o["size"]
            cls = motion_class(o["direction"], o["motion"])
            hit = (d < 1) & (d < best)
            out[i][hit] = cls
            best = np.where(hit, d, best)
    return out


def motion_loss(head, vis_enc, tgt, cls_weight):
    """The motion head's logits on the encoder's visual tokens, flattened to
    [tokens, MOTION_CLASSES], and their weighted cross-entropy against tgt
    (motion_targets, flattened alike)."""
    with amp():
        logits = head(vis_enc).float().reshape(-1, MOTION_CLASSES)
    return logits, F.cross_entropy(logits, tgt, weight=cls_weight)


def motion(data, out):
    """The clips: from MOTION_FROM (a checkpoint, e.g. train.py import of
    models/default), the ViT frozen and its features cached (unless
    MOTION_VIT_SCALE), the projector and the T5 trained on scene batches
    (64 questions) and, every MOTION_CLIP_EVERY-th step, MOTION_CLIP_BATCH
    clip questions, plus, on the clip steps, MOTION_W times the
    cross-entropy of a linear head (training
    only, not exported) that reads from each visual token of the T5
    encoder's output what moves there: nothing, or an object's direction
    (left, right, up, down) and whether it stays, enters or leaves
    (motion_targets). Without such a target the clips stayed at chance in
    every stage (docs/demo-model.md): the answer loss alone never found
    the attention between frames that motion needs."""
    seed = int(os.environ.get("MOTION_SEED", "21"))
    random.seed(seed)
    torch.manual_seed(seed)
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    # MOTION_REINIT=prefix,...: these tensors keep new_model's fresh
    # initialisation instead of MOTION_FROM's. The T5 encoder trained on
    # single frames does not learn motion (its first block must be new:
    # docs/demo-model.md, session 13).
    state = torch.load(os.environ["MOTION_FROM"])
    # MOTION_ENC_ADD=n: n new T5 encoder blocks in front of MOTION_FROM's
    # (prepend_enc_blocks: they start as the identity), trained at
    # MOTION_ENC_ADD_SCALE times the rate. They read the projected ViT
    # tokens, where the row of a patch is still clear (docs/demo-model.md,
    # session 18: vertical motion).
    enc_add = int(os.environ.get("MOTION_ENC_ADD", "0"))
    layers, from_buckets, vit_layers = shape_of(state)
    # MOTION_BUCKETS=n: n relative position buckets instead of
    # MOTION_FROM's (exact_buckets: the same function to start with).
    buckets = int(os.environ.get("MOTION_BUCKETS", "0")) or from_buckets
    # MOTION_VIT_ADD=n (with MOTION_VIT_SCALE): n new ViT layers after
    # MOTION_FROM's (append_vit_layers: they start as the identity),
    # trained at MOTION_VIT_ADD_SCALE times the rate. Session 21: the
    # 3-layer ViT's dense head names an object's shape at 88.7%, and the
    # model is as wrong on training scenes as on held-out ones.
    vit_add = int(os.environ.get("MOTION_VIT_ADD", "0"))
    if vit_add and not float(os.environ.get("MOTION_VIT_SCALE", "0")) > 0:
        sys.exit("train.py motion: MOTION_VIT_ADD needs MOTION_VIT_SCALE > 0 (the new layers are trained)")
    model = new_model(tok, layers + enc_add, buckets, vit_layers + vit_add)
    if buckets != from_buckets:
        state = exact_buckets(state, model.language_model.cfg)
        log(out, f"motion: {buckets} relative position buckets")
    if enc_add:
        state = prepend_enc_blocks(state, model, enc_add)
        log(out, f"motion: {enc_add} new encoder blocks in front, {enc_layers_of(state)} in all")
    if vit_add:
        state = append_vit_layers(state, model, vit_add)
        log(out, f"motion: {vit_add} new ViT layers at the end, {vit_layers_of(state)} in all")
    fresh = model.state_dict()
    reinit = tuple(filter(None, os.environ.get("MOTION_REINIT", "").split(",")))
    for k in state:
        if reinit and k.startswith(reinit):
            state[k] = fresh[k].clone()
    model.load_state_dict(state)
    if reinit:
        log(out, f"motion: fresh {', '.join(k for k in state if k.startswith(reinit))}")
    # MOTION_VIT_SCALE=s: the ViT is trained too, at s times the rate, on
    # the pixels of every batch; else it is frozen and its features cached.
    vit_scale = float(os.environ.get("MOTION_VIT_SCALE", "0"))
    if vit_scale > 0:
        ssrc, srecs = load_set(os.path.join(data, "scenes"), tok)
        csrc, crecs = load_set(os.path.join(data, "clips"), tok)
        def inputs(imgs, batch):
            with amp():
                return pixel_inputs(model.vision_tower, imgs, batch)
    else:
        for p in model.vision_tower.parameters():
            p.requires_grad = False
        ssrc, srecs = load_features(data, out, "scenes", model.vision_tower, tok)
        csrc, crecs = load_features(data, out, "clips", model.vision_tower, tok)
        inputs = batch_inputs
    # MOTION_DENSE=w (with MOTION_VIT_SCALE): a dense head on the ViT's
    # tokens of every scene batch, as in the joint stages, so that the ViT
    # goes on learning the shape under each patch. The imported model has
    # no dense head, so a fresh one is first fitted on the ViT as it is
    # (MOTION_DENSE_FIT steps of 128 scenes, the ViT untouched), unless
    # MOTION_DENSE_FROM names the one a previous run left (OUT/dense_head.pt).
    dense_w = float(os.environ.get("MOTION_DENSE", "0")) if vit_scale > 0 else 0.0
    dense_fg = float(os.environ.get("DENSE_FG", "4"))
    patch = VISION["patch_size"]
    if dense_w > 0:
        dense = load_dense(os.path.join(data, "scenes"), len(ssrc))
        dense_head = nn.Linear(VISION["hidden_size"], DENSE_CLASSES)
        fit = int(os.environ.get("MOTION_DENSE_FIT", "300"))
        if os.environ.get("MOTION_DENSE_FROM"):
            dense_head.load_state_dict(torch.load(os.environ["MOTION_DENSE_FROM"]))
            fit = 0
        if fit:
            dl = fit_dense_head(dense_head, model.vision_tower, ssrc, dense, fit, dense_fg)
            log(out, f"motion: dense head fitted, loss {dl:.4f}")
    grid = VISION["image_size"] // patch
    targets = torch.from_numpy(motion_targets(os.path.join(data, "clips"), grid))
    frames = targets.shape[1]
    task_weight = dict(TASK_WEIGHT3)
    for kv in filter(None, os.environ.get("MOTION_WEIGHTS", "where=3,count=3,ocr=6,caption=2").split(",")):
        k, v = kv.split("=")
        task_weight[k] = float(v)
    # MOTION_HIGHER=1: the scene questions gain higher_questions ("which
    # is higher, the X or the Y?"), weighted by MOTION_WEIGHTS' higher=.
    if os.environ.get("MOTION_HIGHER", "0") != "0":
        if dense_w == 0:
            dense = load_dense(os.path.join(data, "scenes"), len(ssrc))
        extra = higher_questions(dense, srecs, tok)
        srecs = srecs + extra
        log(out, f"motion: {len(extra)} questions which is higher" +
                 (f", e.g. {tok.decode(extra[0]['prompt'])} -> {extra[0]['text']}" if extra else ""))
    weights = [task_weight.get(r["task"], 1.0) for r in srecs]
    head = nn.Linear(TEXT["d_model"], MOTION_CLASSES)
    # MOTION_HEAD_FROM=file: the motion head a previous run left
    # (OUT/motion_head.pt). A fresh head draws its weights after new_model's
    # torch.manual_seed(1), so it starts the same in every run and the
    # encoder stays aligned to it; but with MOTION_DENSE the dense head has
    # drawn first, and a fresh motion head is a stranger to the encoder
    # (docs/demo-model.md, session 14: motion loss 3.07 against 0.43).
    if os.environ.get("MOTION_HEAD_FROM"):
        head.load_state_dict(torch.load(os.environ["MOTION_HEAD_FROM"]))
    motion_w = float(os.environ.get("MOTION_W", "1"))
    fg = float(os.environ.get("MOTION_FG", "4"))
    cls_weight = torch.full((MOTION_CLASSES,), fg)
    cls_weight[0] = 1.0
    # MOTION_ZLOSS: Regularizer's penalty on the T5's attention scores, so
    # that heads saturated by the single-frame tasks can move again.
    zloss = float(os.environ.get("MOTION_ZLOSS", "0"))
    # MOTION_AUX=w: Regularizer's linear probes of each visual token's patch
    # and frame index on the T5 encoder's output. Session 15 found the row
    # of the patches read from there at 64% (the column at 95%) and the
    # answers on vertical motion at chance (docs/demo-model.md).
    aux = float(os.environ.get("MOTION_AUX", "0"))
    reg = Regularizer(model, zloss, aux, grid * grid, frames) if zloss > 0 or aux > 0 else None
    # MOTION_ROWS=w (with MOTION_DENSE): w times rows_loss of a fresh linear
    # head that reads each object patch's row and column from the projected
    # ViT tokens, the T5 encoder's input, on every scene batch. Session 16
    # read the row there at 84% (the column at 98%) and found vertical
    # motion lost in the relative-position-only encoder. Session 17: the
    # head read both almost without error, the answers did not improve
    # (docs/demo-model.md); off by default.
    rows_w = float(os.environ.get("MOTION_ROWS", "0")) if dense_w > 0 else 0.0
    rows_head = nn.Linear(TEXT["d_model"], 2 * grid) if rows_w > 0 else None
    # MOTION_CENTRE=w (with MOTION_DENSE): w times centre_loss of a centre
    # head (MOTION_CENTRE_FROM's, e.g. a stage0-dense run's centre_head.pt,
    # or fresh) on the ViT's tokens of every scene batch, so that the
    # tokens keep telling their object's exact place; saved as centre_head.pt.
    centre_w = float(os.environ.get("MOTION_CENTRE", "0")) if dense_w > 0 else 0.0
    chead = new_centre_head(os.environ.get("MOTION_CENTRE_FROM")) if centre_w > 0 else None
    if chead is not None:
        centres = load_centres(os.path.join(data, "scenes"), len(ssrc), patch)
    vit_new = tuple(f"{VIT_LAYER}{i}." for i in range(vit_layers, vit_layers + vit_add))
    vit_added = [p for n, p in model.named_parameters() if n.startswith(vit_new) and p.requires_grad]
    vit_params = [p for n, p in model.named_parameters()
                  if n.startswith("vision_tower.") and p.requires_grad and not n.startswith(vit_new)]
    new = tuple(f"{ENC_BLOCK}{i}." for i in range(enc_add))
    added = [p for n, p in model.named_parameters() if enc_add and n.startswith(new)]
    # MOTION_BUCKETS_SCALE=s: the relative position bias tables at s times
    # the rate (each of MOTION_BUCKETS' offsets learns on its own).
    rel_scale = float(os.environ.get("MOTION_BUCKETS_SCALE", "1"))
    rel = [p for n, p in model.named_parameters() if rel_scale != 1 and n.endswith(REL_BIAS)]
    rest = [p for n, p in model.named_parameters()
            if not n.startswith("vision_tower.") and not (enc_add and n.startswith(new))
            and not (rel_scale != 1 and n.endswith(REL_BIAS))] + list(head.parameters())
    if dense_w > 0:
        rest += list(dense_head.parameters())
    if chead is not None:
        rest += list(chead.parameters())
    probes = list(reg.parameters()) if reg is not None else []
    probes += list(rows_head.parameters()) if rows_head is not None else []
    params = vit_params + rest + probes + added + rel + vit_added
    peak = float(os.environ.get("MOTION_LR", "3e-4"))
    groups = [dict(params=rest, scale=1.0)] + ([dict(params=vit_params, scale=vit_scale)] if vit_params else [])
    # The probes start fresh: at ten times the rate they fit in the warm-up.
    groups += [dict(params=probes, scale=10.0)] if probes else []
    groups += [dict(params=added, scale=float(os.environ.get("MOTION_ENC_ADD_SCALE", "1")))] if added else []
    groups += [dict(params=rel, scale=rel_scale)] if rel else []
    vit_add_scale = vit_scale * float(os.environ.get("MOTION_VIT_ADD_SCALE", "1"))
    groups += [dict(params=vit_added, scale=vit_add_scale)] if vit_added else []
    opt = torch.optim.AdamW(groups, lr=peak, weight_decay=1e-4)
    steps = int(os.environ.get("MOTION_STEPS", "2000"))
    clip_every = int(os.environ.get("MOTION_CLIP_EVERY", "2"))
    cbs = int(os.environ.get("MOTION_CLIP_BATCH", "8"))
    # MOTION_HEAD_FIT=n: the motion head (and MOTION_AUX's probes) first
    # fitted alone for n batches of 16-frame clips on the model as it is,
    # as MOTION_DENSE_FIT does for the dense head. For a model read back by
    # train.py import, whose motion head is gone: a fresh head is a
    # stranger to the encoder (loss 3.07 against 0.43, session 14), and
    # its first gradients would pull the encoder to it instead.
    head_fit = int(os.environ.get("MOTION_HEAD_FIT", "0"))
    if head_fit:
        fopt = torch.optim.AdamW(list(head.parameters()) + probes, lr=3e-3)
        model.eval()  # not trained here: no attention scores kept for MOTION_ZLOSS
        for i in range(head_fit):
            batch = random.sample(crecs, cbs)
            with torch.no_grad(), amp():
                vis, ids, mask = inputs(csrc, batch)
                enc = model.encode(vis, ids, mask)[0]
            tgt = targets[[r["images"][0] // frames for r in batch]].reshape(-1)
            fl = motion_loss(head, enc[:, :vis.shape[1]], tgt, cls_weight)[1]
            if aux > 0:
                with amp():
                    fl = fl + reg.probe_loss(enc.float(), vis.shape[1])
            fopt.zero_grad()
            fl.backward()
            fopt.step()
            if i % 50 == 0 or i == head_fit - 1:
                log(out, f"motion: head fit step {i} loss {fl.item():.4f}")
    frame_counts = [int(k) for k in os.environ.get("MOTION_FRAMES", str(frames)).split(",")]
    eval_every = int(os.environ.get("EVAL_EVERY", "0"))
    # MOTION_CLIP_FLIP=p (with MOTION_VIT_SCALE): each training clip turned
    # upside down with probability p (flip_clips).
    clip_flip = float(os.environ.get("MOTION_CLIP_FLIP", "0")) if vit_scale > 0 else 0.0
    updown = tok.encode_all(["up", "down"]) if clip_flip > 0 else {}
    # MOTION_CLIP_REVERSE=p: each training clip played backwards with
    # probability p (reverse_clips).
    clip_reverse = float(os.environ.get("MOTION_CLIP_REVERSE", "0"))
    words = tok.encode_all(["left", "right", "up", "down", "yes", "no"]) if clip_reverse > 0 else {}
    events = clip_events(os.path.join(data, "clips")) if clip_reverse > 0 else None
    t0 = time.time()
    ema = {}
    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak, 100) * g["scale"]
        clip = step % clip_every == clip_every - 1
        if clip:
            kind = "clip"
            # MOTION_FRAMES=k,...: each clip step sees k of the frames (k
            # drawn from the list), the first and the last always (what
            # enters or leaves is decided between them) and k-2 others, in
            # order; with fewer frames, proportionally more clips.
            nframes = random.choice(frame_counts)
            batch = random.sample(crecs, cbs * frames // nframes)
            sub = list(range(frames))
            if nframes < frames:
                sub = [0] + sorted(random.sample(range(1, frames - 1), nframes - 2)) + [frames - 1]
            src, batch = csrc, [dict(r, images=[r["images"][f] for f in sub]) for r in batch]
            which = [r["images"][0] // frames for r in batch]  # the clips' indices
            ctgt = targets[which][:, sub]
            if clip_reverse > 0:
                batch, ctgt = reverse_clips(batch, ctgt, events[which], clip_reverse, words)
            if clip_flip > 0:
                batch, src, ctgt = flip_clips(batch, csrc, ctgt, clip_flip, updown)
        else:
            batch, kind = random.choices(srecs, weights, k=64), "scene"
            src = ssrc
        keep = {}
        vis, ids, mask = inputs(src, batch)
        with amp():
            loss = lm_loss(model, vis, ids, mask, batch, "sum", None, keep)
        answer_loss = loss.item()
        if reg is not None:
            with amp():
                extra = reg(keep["enc"], vis.shape[1])
            smooth(ema, "aux", extra.item())
            loss = loss + extra
        if dense_w > 0 and not clip:
            pictures = [r["images"][0] for r in batch]
            target = dense_targets(dense[pictures], patch)
            with amp():
                dl = dense_loss(dense_head, vis, target, dense_fg)
            smooth(ema, "dense", dl.item())
            loss = loss + dense_w * dl
            if rows_head is not None:
                with amp():
                    rl = rows_loss(rows_head, model.multi_modal_projector.linear(vis), target)
                smooth(ema, "rows", rl.item())
                loss = loss + rows_w * rl
            if chead is not None:
                with amp():
                    cl = centre_loss(chead, vis, centres[pictures])
                smooth(ema, "centre", cl.item())
                loss = loss + centre_w * cl
        if clip and motion_w > 0:
            tgt = ctgt.reshape(-1)
            logits, ml = motion_loss(head, keep["enc"][:, :vis.shape[1]], tgt, cls_weight)
            fgm = tgt > 0
            acc = (logits.argmax(1)[fgm] == tgt[fgm]).float().mean().item()
            smooth(ema, "motion", ml.item())
            smooth(ema, "motion_acc", acc)
            loss = loss + motion_w * ml
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        smooth(ema, kind, answer_loss)
        if step % 100 == 0 or step == steps - 1:
            extra_msg = f" dense {ema.get('dense', 0):.4f}" if dense_w > 0 else ""
            extra_msg += f" aux {ema.get('aux', 0):.4f}" if reg is not None else ""
            extra_msg += f" rows {ema.get('rows', 0):.4f}" if rows_head is not None else ""
            extra_msg += f" centre {ema.get('centre', 0):.4f}" if chead is not None else ""
            log(out, f"motion step {step} scene {ema.get('scene', 0):.4f} clip {ema.get('clip', 0):.4f} "
                     f"motion {ema.get('motion', 0):.4f} object patches right {ema.get('motion_acc', 0):.3f}"
                     f"{extra_msg} lr {opt.param_groups[0]['lr']:.2e} {time.time() - t0:.0f}s")
        if eval_every and step % eval_every == eval_every - 1:
            model.eval()
            log(out, f"motion step {step} held-out (first 40): " + json.dumps(evaluate_model(data, out, tok, model, 40)))
            model.train()
        if step % 200 == 199:
            torch.save(plain_state(model), os.path.join(out, "pali-motion-partial.pt"))
    torch.save(plain_state(model), os.path.join(out, "pali-motion.pt"))
    torch.save(head.state_dict(), os.path.join(out, "motion_head.pt"))
    if dense_w > 0:
        torch.save(dense_head.state_dict(), os.path.join(out, "dense_head.pt"))
    if chead is not None:
        torch.save(chead.state_dict(), os.path.join(out, "centre_head.pt"))
    shutil.copy(os.path.join(out, "pali-motion.pt"), os.path.join(out, "pali.pt"))



def average(out, ckpts):
    """Writes the element-wise mean of the checkpoints' weights as
    OUT/pali-motion.pt and OUT/pali.pt. Runs that start from one model
    stay close enough for their mean to be a model too (a "model soup",
    Wortsman et al. 2022); the bundled model of session 17 is the mean
    of three motion runs (docs/demo-model.md)."""
    if len(ckpts) < 2:
        raise SystemExit("train.py average: give at least two checkpoints")
    states = [torch.load(c) for c in ckpts]
    # A run with MOTION_BUCKETS and one without can be averaged: the
    # smaller tables are first moved to the most buckets (exact_buckets,
    # the same function), if all have as many encoder blocks.
    models = all("language_model.encoder." + REL_BIAS in st for st in states)
    buckets = max(shape_of(st)[1] for st in states) if models else 0
    if models and any(shape_of(st)[1] != buckets for st in states):
        cfg = {"relative_attention_num_buckets": buckets, "relative_attention_max_distance": max_distance(buckets)}
        states = [st if shape_of(st)[1] == buckets else exact_buckets(st, cfg) for st in states]
    keys = set(states[0])
    for c, st in zip(ckpts, states):
        if set(st) != keys:
            raise SystemExit(f"train.py average: {c} holds other tensors than {ckpts[0]}")
    mean = {}
    for k in states[0]:
        t = states[0][k]
        if any(st[k].shape != t.shape for st in states):
            raise SystemExit(f"train.py average: {k} differs in shape between the checkpoints")
        mean[k] = sum(st[k].float() for st in states) / len(states) if t.is_floating_point() else t
    if out.endswith(".pt"):
        # A file, not a directory: the mean of the runs' heads
        # (motion_head.pt, dense_head.pt) for the next run to start from.
        torch.save(mean, out)
        print("average: the mean of " + ", ".join(ckpts) + " as " + out)
        return
    os.makedirs(out, exist_ok=True)
    torch.save(mean, os.path.join(out, "pali-motion.pt"))
    shutil.copy(os.path.join(out, "pali-motion.pt"), os.path.join(out, "pali.pt"))
    log(out, "average: the mean of " + ", ".join(ckpts))


def probe_motion(data, out):
    """Can motion be learnt from a checkpoint's frozen ViT features, and by
    what? A small model reads the per-patch motion target (motion_targets)
    of frames 0 and 15 of the first 3,600 training clips, batches of 64,
    AdamW lr 1e-3, PROBE_STEPS steps, no answer loss; every 100 steps it
    prints, on the object patches of clips 3,600-3,999, the share whose
    class, direction and motion (stays, enters, leaves) it names.
    PROBE_MODEL=t5 (default): a projector and a 2-layer T5 encoder
    (relative position bias only, as palid runs it), fresh, or with
    PROBE_KEEP=projector,encoder taken from CKPT and PROBE_REINIT=prefix,...
    (names inside the encoder, e.g. block.0.) fresh again. PROBE_MODEL=abs:
    a fresh one-layer torch Transformer with absolute position embeddings."""
    random.seed(0)
    torch.manual_seed(0)
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    state = torch.load(os.environ["CKPT"])
    vit = pali.VisionTower(vision_config(vit_layers_of(state)))
    vit.load_state_dict({k[len("vision_tower."):]: v for k, v in state.items() if k.startswith("vision_tower.")})
    grid = VISION["image_size"] // VISION["patch_size"]
    tg = torch.from_numpy(motion_targets(os.path.join(data, "clips"), grid))
    n, frames, d = tg.shape[0], tg.shape[1], TEXT["d_model"]
    # PROBE_AXES=tokens: each frame's tokens in column-major order (a
    # vertical neighbour one position away, a horizontal one grid
    # positions), the targets alike. PROBE_AXES=pixels: the frames
    # transposed before the ViT, so that each vertical motion is seen as a
    # horizontal one and the other way round (the targets transposed, left
    # becoming up and right down). Which axis is learnt worse then tells
    # whether the token order, the ViT or the data holds it back.
    axes = os.environ.get("PROBE_AXES", "")
    if axes not in ("", "tokens", "pixels"):
        sys.exit(f"probe-motion: PROBE_AXES={axes}: want tokens or pixels")
    if axes == "pixels":
        imgs, _ = load_set(os.path.join(data, "clips"), tok)
        ends = imgs.reshape(n, frames, *imgs.shape[1:])[:, [0, frames - 1]]
        x = vit_features(vit, np.ascontiguousarray(ends.transpose(0, 1, 3, 2, 4)).reshape(-1, *imgs.shape[1:]))
        x = x.reshape(n, 2 * grid * grid, -1)
        tg = TRANSPOSED[tg.reshape(n, frames, grid, grid).transpose(2, 3).reshape(n, frames, -1)]
    else:
        feats, _ = load_features(data, out, "clips", vit, tok)
        x = feats.reshape(n, frames, grid * grid, -1)[:, [0, frames - 1]]
        if axes == "tokens":
            order = torch.arange(grid * grid).reshape(grid, grid).T.reshape(-1)
            x, tg = x[:, :, order], tg[:, :, order]
        x = x.reshape(n, 2 * grid * grid, -1)
    y = tg[:, [0, frames - 1]].reshape(n, -1)
    train_idx, test_idx = list(range(3600)), list(range(3600, min(n, 4000)))
    kind = os.environ.get("PROBE_MODEL", "t5")
    inp = nn.Linear(VISION["hidden_size"], d)
    if kind == "abs":
        pos = nn.Parameter(torch.zeros(x.shape[1], d))
        layer = nn.TransformerEncoderLayer(d, 4, 256, 0.0, batch_first=True, norm_first=True)
        body = lambda h: layer(h + pos)
        mods = [inp, layer, pos]
    else:
        # PROBE_BUCKETS=n: n relative position buckets (text_config; with
        # n >= 292 every offset between the two frames has its own).
        enc = pali.T5Stack(text_config(tok, None, int(os.environ.get("PROBE_BUCKETS", "0"))),
                           TEXT["num_layers"], False)
        keep = os.environ.get("PROBE_KEEP", "").split(",")
        if "projector" in keep:
            inp.load_state_dict({k.split(".")[-1]: v for k, v in state.items()
                                 if k.startswith("multi_modal_projector.linear.")})
        if "encoder" in keep:
            pre = "language_model.encoder."
            reinit = tuple(filter(None, os.environ.get("PROBE_REINIT", "").split(",")))
            enc.load_state_dict({k[len(pre):]: v for k, v in state.items()
                                 if k.startswith(pre) and not (reinit and k[len(pre):].startswith(reinit))},
                                strict=False)
        body = enc
        mods = [inp, enc]
    head = nn.Linear(d, MOTION_CLASSES)
    params = [p for m in mods + [head] for p in ([m] if isinstance(m, nn.Parameter) else m.parameters())]
    opt = torch.optim.AdamW(params, 1e-3)
    weight = torch.full((MOTION_CLASSES,), 4.0)
    weight[0] = 1.0
    t0 = time.time()
    for step in range(int(os.environ.get("PROBE_STEPS", "400"))):
        idx = random.sample(train_idx, 64)
        with amp():
            logits = head(body(inp(x[idx].float()))).float()
        loss = F.cross_entropy(logits.reshape(-1, MOTION_CLASSES), y[idx].reshape(-1), weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 99:
            with torch.no_grad():
                got = torch.cat([head(body(inp(x[test_idx[i:i + 50]].float()))) for i in range(0, len(test_idx), 50)])
            got, want = got.argmax(-1), y[test_idx]
            fg = want > 0
            got, want = got[fg] - 1, want[fg] - 1
            log(out, f"probe-motion {kind} axes={axes} keep={os.environ.get('PROBE_KEEP', '')} "
                     f"reinit={os.environ.get('PROBE_REINIT', '')} step {step + 1} loss {loss.item():.3f} "
                     f"held-out object patches: class {(got == want).float().mean():.3f} "
                     f"direction {(got // 3 == want // 3).float().mean():.3f} "
                     f"motion {(got % 3 == want % 3).float().mean():.3f}; direction by true one: "
                     + " ".join(f"{name} {(got[want // 3 == i] // 3 == i).float().mean():.3f}"
                                for i, name in enumerate(DIRECTIONS))
                     + f" {time.time() - t0:.0f}s")


# ----------------------------------------------------------------------------
# evaluation and export


def load_model(data, ckpt):
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    state = torch.load(ckpt)
    model = new_model(tok, *shape_of(state))
    model.load_state_dict(state)
    model.eval()
    return tok, model


def evaluate(data, out, ckpt=None, limit=None):
    tok, model = load_model(data, ckpt or os.path.join(out, "pali.pt"))
    summary, counts, preds = evaluate_model(data, out, tok, model, limit, details=True)
    with open(os.path.join(out, "eval.jsonl"), "w") as f:
        for p in preds:
            f.write(json.dumps(p) + "\n")
    log(out, "eval exact match %: " + json.dumps(summary) + " n=" + json.dumps(counts))
    # Direction by the true answer: session 15 found the vertical ones at chance.
    dirs = [p for p in preds if p["task"] == "direction"]
    n = collections.Counter(p["answer"] for p in dirs)
    right = collections.Counter(p["answer"] for p in dirs if p["got"] == p["answer"])
    if n:
        log(out, "eval direction right by true answer: " + ", ".join(f"{k} {right[k]}/{n[k]}" for k in sorted(n)))
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump(dict(accuracy=summary, n=counts), f, indent=1)
    return summary


@torch.no_grad()
def greedy_answers(tok, model, feats, recs, bs=64):
    """Each record of recs with model's greedy answer to it (decoded), in
    batches of bs; feats: the ViT features of the pictures recs index."""
    for i in range(0, len(recs), bs):
        b = recs[i:i + bs]
        vis, ids, mask = batch_inputs(feats, b)
        yield from zip(b, (tok.decode(g) for g in model.greedy(vis, ids, mask)))


@torch.no_grad()
def evaluate_model(data, out, tok, model, limit=None, details=False):
    """Exact match in % per task on the first limit held-out scenes and
    clips (all with None); with details also the counts and each answer."""
    results = {}
    preds = []
    for name in ["eval-scenes", "eval-clips"]:
        imgs, recs = load_set(os.path.join(data, name), tok)
        if limit:  # the first limit scenes (clips) only
            per = len(recs[0]["images"])
            imgs = imgs[:limit * per]
            recs = [r for r in recs if max(r["images"]) < limit * per]
        feats = vit_features(model.vision_tower, imgs)
        for r, got in greedy_answers(tok, model, feats, recs, 64 if name == "eval-scenes" else 8):
            ok = got == r["text"]
            t = results.setdefault(r["task"], [0, 0])
            t[0] += ok
            t[1] += 1
            preds.append(dict(seed=r["seed"], task=r["task"], answer=r["text"], got=got))
    summary = {k: round(100.0 * v[0] / v[1], 2) for k, v in sorted(results.items())}
    counts = {k: v[1] for k, v in sorted(results.items())}
    if details:
        return summary, counts, preds
    return summary


@torch.no_grad()
def evaluate_higher(data, out, ckpt):
    """Exact match of higher_questions on the held-out scenes: how well the
    model compares two objects' heights (a task of MOTION_HIGHER only)."""
    tok, model = load_model(data, ckpt)
    path = os.path.join(data, "eval-scenes")
    imgs, recs = load_set(path, tok)
    qs = higher_questions(load_dense(path, len(imgs)), recs, tok)
    right = sum(got == r["text"] for r, got in greedy_answers(tok, model, vit_features(model.vision_tower, imgs), qs))
    log(out, f"eval which is higher: {right}/{len(qs)} right ({100.0 * right / max(len(qs), 1):.1f}%)")


def seen(data, dst, scenes=500, clips=200):
    """Writes dst, a data directory for train.py eval whose eval-scenes and
    eval-clips are data's first scenes training scenes and clips training
    clips: links to their pictures (and label maps) and their questions.
    Session 21: is the model as wrong on what it was trained on as on the
    held-out sets (underfitting), or right there and wrong only here?"""
    if os.path.exists(dst):
        sys.exit(f"train.py seen: {dst} exists")
    os.makedirs(dst)
    for f in ("spiece.model", "spiece.vocab"):
        if os.path.exists(os.path.join(data, f)):
            os.symlink(os.path.abspath(os.path.join(data, f)), os.path.join(dst, f))
    for src, name, n in (("scenes", "eval-scenes", scenes), ("clips", "eval-clips", clips)):
        sdir, ddir = os.path.join(data, src), os.path.join(dst, name)
        os.makedirs(ddir)
        # The first n items: scene-NNNNNN.png or clip-NNNNNN/frame-FF.png.
        item = lambda p: int(p.split("-")[1][:6])
        keep = [l for l in open(os.path.join(sdir, "questions.jsonl"))
                if all(item(p) < n for p in json.loads(l)["images"])]
        with open(os.path.join(ddir, "questions.jsonl"), "w") as f:
            f.writelines(keep)
        for e in sorted(os.listdir(sdir)):
            if e.startswith(("scene-", "clip-")) and item(e) < n:
                os.symlink(os.path.abspath(os.path.join(sdir, e)), os.path.join(ddir, e))
        meta = "scenes.jsonl" if src == "scenes" else "clips.jsonl"
        if os.path.exists(os.path.join(sdir, meta)):
            with open(os.path.join(ddir, meta), "w") as f:
                f.writelines(l for i, l in zip(range(n), open(os.path.join(sdir, meta))))
    print(f"{dst}: {scenes} training scenes and {clips} training clips as its held-out sets")


def directions(data, out, split="eval-clips"):
    """The answers to the direction questions in OUT/eval.jsonl (train.py
    eval's, on DATA/split), counted by the true direction, by which half of
    the picture the object is in on average over the frames it is seen in
    (left or right for the horizontal movers, top or bottom for the
    vertical), and by the answer given. A model that reads the motion
    answers alike in both halves; one that answers by the position does
    not (session 20: the vertical answers follow the half)."""
    qs = [json.loads(l) for l in open(os.path.join(data, split, "questions.jsonl"))]
    clips = {c["seed"]: c for c in map(json.loads, open(os.path.join(data, split, "clips.jsonl")))}
    got = [e for e in map(json.loads, open(os.path.join(out, "eval.jsonl"))) if e["task"] == "direction"]
    asked = [q for q in qs if q["task"] == "direction"][:len(got)]
    counts = collections.Counter()
    for q, e in zip(asked, got):
        if (q["seed"], q["answer"]) != (e["seed"], e["answer"]):
            sys.exit(f"directions: {out}/eval.jsonl does not follow {split}/questions.jsonl")
        name = q["prompt"].removeprefix("answer en which way is the ").removesuffix(" moving?")
        o = next(o for o in clips[q["seed"]]["objects"] if f"{o['color']} {o['shape']}" == name)
        t = np.arange(len(clips[q["seed"]]["frames"]))
        x, y = o["x"] + o["vx"] * t, o["y"] + o["vy"] * t
        seen = (np.abs(x - 0.5) < 0.5 + o["size"]) & (np.abs(y - 0.5) < 0.5 + o["size"])
        if o["direction"] in ("left", "right"):
            half = "left" if x[seen].mean() < 0.5 else "right"
        else:
            half = "top" if y[seen].mean() < 0.5 else "bottom"
        counts[o["direction"], half, e["got"]] += 1
    lines = ["direction | half | " + " | ".join(DIRECTIONS) + " | other"]
    for d in DIRECTIONS:
        for half in (("left", "right") if d in ("left", "right") else ("top", "bottom")):
            row = [counts[d, half, a] for a in DIRECTIONS]
            other = sum(v for (d2, h2, a), v in counts.items() if (d2, h2) == (d, half) and a not in DIRECTIONS)
            lines.append(f"{d} | {half} | " + " | ".join(map(str, row)) + f" | {other}")
    print("\n".join(lines))


def linear_probe(x, y, x_test, y_test, classes):
    """Held-out accuracy of a linear classifier fitted to (x, y): full-batch
    Adam, lr 1e-2, 300 steps."""
    head = nn.Linear(x.shape[1], classes)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(300):
        loss = F.cross_entropy(head(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (head(x_test).argmax(-1) == y_test).float().mean().item()


def diagnose(data, out, ckpt=None):
    """Three measurements of the information path from the picture to the
    answer, on the first 100 held-out scenes (docs/demo-model.md):

    - position: a linear probe (trained on 75 scenes, tested on 25) that
      reads each visual token's patch index, from the projected ViT
      tokens and from the T5 encoder's output;
    - the row and column of the patches objects cover (rows_and_columns),
      and "where" asked of pictures turned over (up_and_down);
    - cross-attention at the first answer token of "where" questions,
      per decoder layer and head: the spread (standard deviation) of the
      scores over the visual tokens, the largest attention weight and the
      weight on the visual tokens."""
    torch.manual_seed(0)
    tok, model = load_model(data, ckpt or os.path.join(out, "pali.pt"))
    imgs, recs = load_subset(data, "eval-scenes", tok, 100)
    wrecs = [r for r in recs if r["task"] == "where"][:32]
    with torch.no_grad():
        vit = model.vision_tower(to_pixels(imgs))
        n = vit.shape[1]
        prompt = tok.encode_all(["answer en where is the star?"])["answer en where is the star?"] + [EOS]
        ids, mask = pad([prompt] * len(imgs))
        enc, _ = model.encode(vit, ids, mask)
        feats = {"projected ViT tokens": model.multi_modal_projector.linear(vit), "T5 encoder output": enc[:, :n]}
    for name, f in feats.items():
        lab = torch.arange(n).repeat(f.shape[0], 1)
        tr, te = f[:75].reshape(-1, f.shape[-1]), f[75:].reshape(-1, f.shape[-1])
        acc = linear_probe(tr, lab[:75].reshape(-1), te, lab[75:].reshape(-1), n)
        log(out, f"diagnose: patch index read linearly from the {name}: {100 * acc:.1f}%")
    rows_and_columns(data, out, tok, model)
    up_and_down(data, out, tok, model)
    cross = {blk.layer[1].EncDecAttention: i for i, blk in enumerate(model.language_model.decoder.block)}
    scores = {}
    orig = pali.T5Attention.forward

    def record(self, x, kv=None, bias=None):
        if self in cross:
            b, nq, nk = x.shape[0], x.shape[1], kv.shape[1]
            q = self.q(x).view(b, nq, self.h, self.dk).transpose(1, 2)
            k = self.k(kv).view(b, nk, self.h, self.dk).transpose(1, 2)
            scores[cross[self]] = q @ k.transpose(-1, -2) + (0 if bias is None else bias)
        return orig(self, x, kv, bias)
    with torch.no_grad():
        vis, ids, mask = pixel_inputs(model.vision_tower, imgs, wrecs)
        enc, emask = model.encode(vis, ids, mask)
        pali.T5Attention.forward = record
        try:
            model.decode_logits(enc, emask, torch.zeros(len(wrecs), 1, dtype=torch.long))
        finally:
            pali.T5Attention.forward = orig
    nv = vis.shape[1]
    for i, s in sorted(scores.items()):
        s0 = s[:, :, 0]
        a = torch.softmax(s0, -1)
        spread = s0[..., :nv].std(-1).mean(0).tolist()
        top = a.max(-1).values.mean(0).tolist()
        mass = a[..., :nv].sum(-1).mean(0).tolist()
        fmt = lambda v: " ".join(f"{x:.3g}" for x in v)
        log(out, f"diagnose: decoder layer {i} cross-attention per head, first answer token of 'where': "
                 f"score spread over visual tokens {fmt(spread)}; top weight {fmt(top)}; weight on the picture {fmt(mass)}")


@torch.no_grad()
def up_and_down(data, out, tok, model, n=300):
    """The "where" questions of the first n held-out scenes, asked of each
    picture as rendered and turned over (upside down for the "top" /
    "bottom" questions, mirrored for "left" / "right"): how often the first
    answer token ranks the right word above its opposite, and, turned
    over, the opposite above the right word. A model that reads the
    object's place gets both high; session 9 found "top" and "bottom" at
    chance both ways (docs/demo-model.md)."""
    imgs, recs = load_subset(data, "eval-scenes", tok, n)
    recs = [r for r in recs if r["task"] == "where"]
    word = {w: i[0] for w, i in tok.encode_all(["top", "bottom", "left", "right"]).items()}
    opposite = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}

    def first_token(u8):
        vis, ids, mask = batch_inputs(vit_features(model.vision_tower, u8), recs)
        enc, emask = model.encode(vis, ids, mask)
        return model.decode_logits(enc, emask, torch.zeros(len(recs), 1, dtype=torch.long))[:, 0]
    plain = first_token(imgs)
    turned = {"vertical": first_token(np.ascontiguousarray(imgs[:, ::-1])),
              "horizontal": first_token(np.ascontiguousarray(imgs[:, :, ::-1]))}
    for axis, words in (("vertical", ("top", "bottom")), ("horizontal", ("left", "right"))):
        ok = okt = total = 0
        for i, r in enumerate(recs):
            if r["text"] in words:
                a, b = word[r["text"]], word[opposite[r["text"]]]
                ok += bool(plain[i, a] > plain[i, b])
                okt += bool(turned[axis][i, b] > turned[axis][i, a])
                total += 1
        log(out, f"diagnose: {axis} 'where' ({total}): right {ok} as rendered, {okt} turned over")


def where_only(data, out):
    """A model trained on the "where" questions alone, then up_and_down:
    can "top" and "bottom" be learnt at all? A new model (new_model, the
    ViT included), or WHERE_FROM=OUT/paliN.pt; batches of 64, peak lr
    WHERE_LR (1e-3; 50 warm-up steps, cosine), WHERE_STEPS steps (600),
    the answer loss summed over tokens. Saved as OUT/pali-where.pt (a
    joint stage continues from it with STAGEn_FROM). WHERE_FREEZE=prefix,...
    keeps the parameters whose names start with one of them fixed
    (vision_tower.: the ViT). WHERE_SINCOS=1 fixes the ViT's position table to
    2-D sines and cosines (rows in the first half of the channels, columns
    in the second) instead of learning it."""
    torch.manual_seed(0)
    random.seed(0)
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    model = new_model(tok)
    if os.environ.get("WHERE_FROM"):
        model.load_state_dict(torch.load(os.environ["WHERE_FROM"]))
    if os.environ.get("WHERE_SINCOS") == "1":
        pe = model.vision_tower.vision_model.embeddings.position_embedding.weight
        g, q = VISION["image_size"] // VISION["patch_size"], pe.shape[1] // 4
        freq = 1.0 / (100 ** (torch.arange(q) / q))
        ys, xs = torch.meshgrid(torch.arange(g).float(), torch.arange(g).float(), indexing="ij")
        ys, xs = ys.reshape(-1, 1) * freq, xs.reshape(-1, 1) * freq
        with torch.no_grad():
            pe.copy_(torch.cat([ys.sin(), ys.cos(), xs.sin(), xs.cos()], 1))
        pe.requires_grad_(False)
    frozen = tuple(filter(None, os.environ.get("WHERE_FREEZE", "").split(",")))
    for name, p in model.named_parameters():
        if frozen and name.startswith(frozen):
            p.requires_grad_(False)
    imgs, recs = load_set(os.path.join(data, "scenes"), tok)
    recs = [r for r in recs if r["task"] == "where"]
    params = [p for p in model.parameters() if p.requires_grad]
    peak = float(os.environ.get("WHERE_LR", "1e-3"))
    opt = torch.optim.AdamW(params, lr=peak, weight_decay=1e-4)
    steps = int(os.environ.get("WHERE_STEPS", "600"))
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, peak, 50)
        batch = random.sample(recs, 64)
        with amp():
            vis, ids, mask = pixel_inputs(model.vision_tower, imgs, batch)
            loss = lm_loss(model, vis, ids, mask, batch, "sum")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 200 == 199 or step == steps - 1:
            log(out, f"where-only step {step} loss {loss.item():.3f} {time.time() - t0:.0f}s")
    torch.save(model.state_dict(), os.path.join(out, "pali-where.pt"))
    model.eval()
    up_and_down(data, out, tok, model)


def rows_and_columns(data, out, tok, model, n=3000):
    """Linear probes, trained on the object patches (at least half covered)
    of 80% of the first n training scenes and tested on the rest, that read
    each patch's row and column from the ViT tokens, the projected tokens
    and the T5 encoder's output (prompt "caption en"), and ridge regressions
    of their object's centre. Session 9 found the row lost on the way
    (docs/demo-model.md)."""
    imgs, _ = load_set(os.path.join(data, "scenes"), tok)
    patch = VISION["patch_size"]
    obj = dense_targets(load_dense(os.path.join(data, "scenes"), len(imgs))[:n], patch)
    obj = obj[..., 1:DENSE_PANEL].sum(-1) >= 0.5
    # And the centre of the object covering at least half of a patch
    # (load_centres), x and y (session 23: y the weaker).
    centres = load_centres(os.path.join(data, "scenes"), len(imgs), patch)[:n]
    big = torch.from_numpy(centres[..., 2] >= 0.5)
    prompt = tok.encode_all(["caption en"])["caption en"] + [EOS]
    with torch.no_grad():
        vit = vit_features(model.vision_tower, imgs[:n]).float()
        encs = []
        for i in range(0, n, 250):
            ids, mask = pad([prompt] * len(vit[i:i + 250]))
            encs.append(model.encode(vit[i:i + 250], ids, mask)[0][:, :vit.shape[1]])
        feats = {"ViT tokens": vit, "projected ViT tokens": model.multi_modal_projector.linear(vit),
                 "T5 encoder output": torch.cat(encs)}
    g = VISION["image_size"] // patch
    where = torch.arange(g * g).expand(n, -1)[obj]
    for name, f in feats.items():
        x = f[obj]
        cut = int(0.8 * len(x))
        x = (x - x[:cut].mean(0)) / (x[:cut].std(0) + 1e-6)
        msg = []
        for what, lab in (("row", where // g), ("column", where % g)):
            acc = linear_probe(x[:cut], lab[:cut], x[cut:], lab[cut:], g)
            msg.append(f"{what} {100 * acc:.1f}%")
        log(out, f"diagnose: object patches ({len(x) - cut} held out) read linearly from the {name}: " + ", ".join(msg))
        x, y = f[big].double(), torch.from_numpy(centres[..., :2][big]).double()
        x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
        cut = int(0.8 * len(x))
        w = torch.linalg.solve(x[:cut].T @ x[:cut] + 1e-2 * torch.eye(x.shape[1], dtype=x.dtype), x[:cut].T @ y[:cut])
        rmse = ((x[cut:] @ w - y[cut:]) * patch).pow(2).mean(0).sqrt().tolist()
        log(out, f"diagnose: their object's centre ({len(x) - cut} patches held out) read linearly (ridge) "
                 f"from the {name}: RMSE x {rmse[0]:.2f} y {rmse[1]:.2f} pixels")


@torch.no_grad()
def probe_dense(data, out):
    """What stage 0's dense head (DENSE > 0) reads from the ViT's tokens on
    the first 300 held-out scenes: per patch at least a quarter covered,
    its main non-background class among the non-background classes
    (colour and shape of objects, characters); per object, the shape whose
    class, summed over the object's patches weighted by its coverage, the
    head ranks first among the four shapes of the object's colour."""
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    imgs, _ = load_set(os.path.join(data, "eval-scenes"), tok)
    n = 300
    labels = load_dense(os.path.join(data, "eval-scenes"), len(imgs))[:n]
    head = nn.Linear(VISION["hidden_size"], DENSE_CLASSES)
    if os.environ.get("CKPT"):
        # A whole model's ViT (CKPT=OUT/paliN.pt) with the dense head its
        # stage left (OUT/dense_headN.pt).
        _, model = load_model(data, os.environ["CKPT"])
        vit = model.vision_tower
        # (train.py motion's OUT/pali-motion.pt: OUT/dense_head.pt.)
        ckdir, ckname = os.path.split(os.environ["CKPT"])
        hp = os.path.join(ckdir, ckname.replace("pali", "dense_head", 1))
        if not os.path.exists(hp):
            hp = os.path.join(ckdir, "dense_head.pt")
        head.load_state_dict(torch.load(hp))
    else:
        vs = torch.load(os.path.join(out, "vit.pt"))
        vit = pali.VisionTower(vision_config(vit_layers_of(vs, VIT_LAYER[len("vision_tower."):])))
        vit.load_state_dict(vs)
        head.load_state_dict(torch.load(os.path.join(out, "dense_head.pt")))
    vit.eval()
    patch = VISION["patch_size"]
    lp = dense_logprobs(vit, head, imgs, n)
    pred = lp[..., 1:].argmax(-1)
    fg = dense_targets(labels, patch)[..., 1:].max(-1)
    keep = fg.values >= 0.25
    t, q = fg.indices[keep], pred[keep]
    obj, char = t < DENSE_PANEL - 1, t >= DENSE_PANEL
    nc = len(COLORS)
    log(out, f"probe-dense: object patches {int(obj.sum())}: colour {100 * ((t % nc) == (q % nc))[obj].float().mean():.1f}% "
             f"shape {100 * ((t // nc) == (q // nc))[obj].float().mean():.1f}%; character patches {int(char.sum())}: "
             f"{100 * (t == q)[char].float().mean():.1f}%")
    ok, total = object_shapes(data, lp)
    log(out, f"probe-dense: objects {total}: shape {shape_percent((ok, total)):.1f}%")


@torch.no_grad()
def dense_logprobs(vit, head, imgs, n=300):
    """The dense head's log-probabilities on vit's tokens of the first n
    pictures of imgs (uint8), vit in eval mode meanwhile."""
    was = vit.training
    vit.eval()
    lp = torch.log_softmax(head(vit(to_pixels(imgs[:n]))), -1)
    vit.train(was)
    return lp


def object_shapes(data, lp):
    """Per object of the first held-out scenes (as many as lp, the dense
    head's log-probabilities on them, covers), whether the shape whose
    dense class (of the object's colour), summed over the object's patches
    weighted by its coverage, the head ranks first is the object's:
    (objects right, objects)."""
    patch = VISION["patch_size"]
    n = lp.shape[0]
    nc = len(COLORS)
    recs = [json.loads(l) for l in open(os.path.join(data, "eval-scenes", "scenes.jsonl"))][:n]
    ok = total = 0
    g = VISION["image_size"] // patch
    for k, r in enumerate(recs):
        lab = torch.from_numpy(np.asarray(Image.open(os.path.join(data, "eval-scenes", r["labels"]))).astype(np.int64))
        for i, o in enumerate(r["objects"] or []):
            cover = (lab == 1 + i).float().reshape(g, patch, g, patch).mean((1, 3)).reshape(-1)
            if cover.max() == 0:
                continue
            score = (lp[k] * cover[:, None]).sum(0)
            c = COLORS.index(o["color"])
            best = max(range(len(SHAPES)), key=lambda s: score[1 + s * nc + c].item())
            ok += best == SHAPES.index(o["shape"])
            total += 1
    return ok, total


def shape_percent(right_total):
    """object_shapes' answer as a percentage."""
    right, total = right_total
    return 100 * right / max(total, 1)


def export(data, out, dst):
    tok, model = load_model(data, os.path.join(out, "pali.pt"))
    os.makedirs(dst, exist_ok=True)
    sd = model.state_dict()
    pali.save_safetensors(sd, os.path.join(dst, "model.safetensors"))
    cfg = dict(model_type="pali3", architectures=["Pali3ForConditionalGeneration"],
               vision_config=dict(model.vision_tower.vision_model.cfg, model_type="siglip_vision_model"),
               text_config=dict(model.language_model.cfg, model_type="t5"),
               projection_dim=TEXT["d_model"], hidden_size=TEXT["d_model"],
               image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(dst, "preprocessor_config.json"), "w") as f:
        json.dump(dict(image_mean=[0.5] * 3, image_std=[0.5] * 3, size=dict(height=64, width=64),
                       rescale_factor=1 / 255, do_normalize=True, do_resize=True), f, indent=1)
    shutil.copy(os.path.join(data, "spiece.model"), os.path.join(dst, "spiece.model"))
    print("exported", len(sd), "tensors to", dst)


def import_gguf(data, model_dir, out):
    """MODEL's GGUF files back as a checkpoint (gguf_import), after checking
    that its vocabulary is DATA's tokenizer piece for piece and that every
    tensor of the model is there."""
    import gguf_import
    sd, pieces = gguf_import.load(model_dir)
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    if pieces is None or pieces[:len(tok.pieces)] != tok.pieces:
        sys.exit(f"{model_dir}: its vocabulary is not {data}/spiece.model's")
    model = new_model(tok, *shape_of(sd))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})  # strict: names every gap
    os.makedirs(out, exist_ok=True)
    torch.save(plain_state(model), os.path.join(out, "pali.pt"))
    log(out, f"imported {len(sd)} tensors from {model_dir}")


def bench(data):
    """Training-step speed in float32 and under TRAIN_BF16's autocast, in
    one run so that a shared machine's noise hits both alike: a joint
    stage's scene step (64 questions, the ViT on their pictures, the dense
    head), its clip step (4 clips of 16 frames) and the ViT on 128 pictures
    with the dense head (stage 0's batch, without its text tower), forward
    and backward. Rounds
    alternate the two; the median of BENCH_ROUNDS (5) rounds of 3 steps is
    printed, and bf16's speed-up."""
    global BF16
    random.seed(0)
    tok = Tokenizer(os.path.join(data, "spiece.model"))
    model = new_model(tok)
    model.train()
    head = nn.Linear(VISION["hidden_size"], DENSE_CLASSES)
    simgs, srecs = load_set(os.path.join(data, "scenes"), tok)
    cimgs, crecs = load_subset(data, "clips", tok, 200)
    dense = load_dense(os.path.join(data, "scenes"), len(simgs))

    def joint(recs, imgs, n, scenes):
        batch = random.sample(recs, n)
        with amp():
            vis, ids, mask = pixel_inputs(model.vision_tower, imgs, batch)
            loss = lm_loss(model, vis, ids, mask, batch, "sum")
            if scenes:  # the dense head reads the scenes' label maps
                src = [r["images"][0] for r in batch]
                loss = loss + dense_loss(head, vis, dense_targets(dense[src], VISION["patch_size"]), 4.0)
        loss.backward()

    def stage0_step():
        batch = random.sample(range(len(simgs)), 128)
        with amp():
            loss = dense_loss(head, model.vision_tower(to_pixels(simgs[batch])),
                              dense_targets(dense[batch], VISION["patch_size"]), 4.0)
        loss.backward()

    steps = {"joint scene step": lambda: joint(srecs, simgs, 64, True),
             "joint clip step": lambda: joint(crecs, cimgs, 4, False),
             "ViT step (128 pictures, dense head)": stage0_step}
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    print(f"threads {torch.get_num_threads()}, {rounds} rounds of 3 steps, median seconds per step")
    for name, fn in steps.items():
        times = {False: [], True: []}
        for _ in range(rounds):
            for bf16 in (False, True):
                BF16 = bf16
                fn()  # warm-up
                t0 = time.perf_counter()
                for _ in range(3):
                    fn()
                times[bf16].append((time.perf_counter() - t0) / 3)
                model.zero_grad(set_to_none=True)
        f32, b16 = sorted(times[False])[rounds // 2], sorted(times[True])[rounds // 2]
        print(f"{name}: float32 {f32:.3f} s, bf16 {b16:.3f} s, bf16 {f32 / b16:.2f}x faster")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "stage0":
        stage0(sys.argv[2], sys.argv[3])
    elif cmd == "stage0-dense":
        stage0_dense(sys.argv[2], sys.argv[3])
    elif cmd == "stage1":
        stage1(sys.argv[2], sys.argv[3])
    elif cmd in {f"stage{n}" for n in JOINT_STAGES}:
        # The joint stages share stage2 and differ in their settings.
        stage2(sys.argv[2], sys.argv[3], stage=int(cmd[len("stage"):]))
    elif cmd == "retokenize":
        retokenize(*sys.argv[2:6], stage=int(sys.argv[6]))
    elif cmd == "eval":
        evaluate(sys.argv[2], sys.argv[3], ckpt=os.environ.get("CKPT") or None,
                 limit=int(os.environ.get("EVAL_ITEMS", "0")) or None)
    elif cmd == "eval-higher":
        evaluate_higher(sys.argv[2], sys.argv[3], os.environ.get("CKPT") or os.path.join(sys.argv[3], "pali.pt"))
    elif cmd == "seen":
        seen(sys.argv[2], sys.argv[3])
    elif cmd == "directions":
        directions(sys.argv[2], sys.argv[3], os.environ.get("SPLIT", "eval-clips"))
    elif cmd == "diagnose":
        diagnose(sys.argv[2], sys.argv[3], ckpt=os.environ.get("CKPT") or None)
    elif cmd == "rows":
        tok, model = load_model(sys.argv[2], os.environ.get("CKPT") or os.path.join(sys.argv[3], "pali.pt"))
        rows_and_columns(sys.argv[2], sys.argv[3], tok, model, int(os.environ.get("ROWS_SCENES", "3000")))
    elif cmd == "where-only":
        where_only(sys.argv[2], sys.argv[3])
    elif cmd == "probe-dense":
        probe_dense(sys.argv[2], sys.argv[3])
    elif cmd == "export":
        export(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "bench":
        bench(sys.argv[2])
    elif cmd == "motion":
        motion(sys.argv[2], sys.argv[3])
    elif cmd == "probe-motion":
        probe_motion(sys.argv[2], sys.argv[3])
    elif cmd == "average":
        average(sys.argv[2], sys.argv[3:])
    elif cmd == "import":
        import_gguf(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
