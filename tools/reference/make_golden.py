#!/usr/bin/python3
"""Makes palid's golden test data: tiny random PaLI-3 checkpoints and answers.

Run from anywhere (needs Debian's python3-torch, python3-numpy, sentencepiece):

    /usr/bin/python3 tools/reference/make_golden.py

For each model in MODELS it
  1. trains a SentencePiece unigram model with spm_train on corpus.txt,
  2. draws random weights from a fixed seed and writes a Hugging Face style
     checkpoint directory runtime/testdata/<name>/ (config.json,
     model.safetensors in F32, spiece.model),
  3. runs pali3_ref.py (float64) on the cases below and writes golden.json
     and the input pixels (pix_<case>.u8: frames of CHW bytes, value
     v / 127.5 - 1),
  4. checks that no golden decision is close: the top-1/top-2 logit margin
     at every greedy step, the gaps that decide each beam step, and that a
     simulation of the Q8_0 file gives the same greedy tokens. If a seed
     fails, the next seed is tried (the seed used is recorded).

Everything is deterministic; running it twice gives the same bytes.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pali3_ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "runtime", "testdata")

MAX_TOKENS = 8
TRAIN_STEPS = 400
MIN_TRAINED_MARGIN = 1.0  # margin the short training must reach on every step
BEAM = 3
MIN_MARGIN = 0.02      # greedy top-1 minus top-2 logit, every step, float64 reference
MIN_Q8_MARGIN = 0.02   # the same in the Q8_0 simulation (must also pick the same tokens)
MIN_BEAM_GAP = 2e-4    # score gaps that decide a beam step

MODELS = [
    {
        "name": "pali3_tiny_a",
        "seed": 1000,
        "spm_norm": "nmt_nfkc",
        "dtype": "F32",
        "vision": dict(hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       image_size=32, patch_size=8, layer_norm_eps=1e-6, num_channels=3),
        "text": dict(d_model=64, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                     feed_forward_proj="gated-gelu", tie_word_embeddings=False, layer_norm_epsilon=1e-6),
        "embed_std": 1.0,
        "head_std": 0.6,
        "cases": [
            ("caption", [32], "caption en", "a red circle next to a blue door"),
            ("question", [32], "answer en what color is the circle?", "blue"),
            ("nfkc", [32], "answer en ｗｈａｔ is written on the ＳＴＯＰ sign?  ①", "STOP 12 oak ave"),
            ("video3", [32, 32, 32], "answer en which way did the car go?", "left"),
            ("hires48", [48], "detect car ; dog", "car ; dog"),
            ("long9", [32] * 9, "describe en the red circle moves left next to a blue door", "the car went left"),
        ],
    },
    {
        "name": "pali3_tiny_b",
        "seed": 2000,
        "spm_norm": "identity",
        "dtype": "BF16",  # as real checkpoints are; exercises the converter's BF16 path
        "vision": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                       image_size=24, patch_size=6, layer_norm_eps=1e-5, num_channels=3),
        "text": dict(d_model=64, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=6,
                     feed_forward_proj="gated-silu", tie_word_embeddings=True, layer_norm_epsilon=1e-6),
        "embed_std": 3.0,
        "head_std": None,
        "cases": [
            ("caption", [24], "caption en", "two cars"),
            ("question", [24], "answer en is there a package at the door?", "yes"),
            ("unk", [24], "answer en is the Café open?", "no"),
            ("video3", [24, 24, 24], "answer en how many persons are there?", "three persons"),
            ("hires48", [48], "ocr", "STOP 42 main ave"),
            ("long9", [24] * 9, "detect person ; bicycle", "a green star and a white box next to a car"),
        ],
    },
]

VOCAB = 320

# Cases whose simulated Q8_0 / Q4_0 / F16 logits (each on its own greedy
# path) are stored too, so the Go test can check the quantized engine
# against the same arithmetic rather than only against a loose bound.
SIM_LOGITS = ("question", "video3")


def train_spm(norm):
    """Trains the unigram model in a scratch dir so its bytes do not depend on paths."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(HERE, "corpus.txt"), os.path.join(tmp, "corpus.txt"))
        cmd = [
            "spm_train", "--input=corpus.txt", "--model_prefix=spiece", "--model_type=unigram",
            "--vocab_size=%d" % VOCAB, "--character_coverage=1.0", "--pad_id=0", "--eos_id=1",
            "--unk_id=2", "--bos_id=-1", "--num_threads=1", "--random_seed=1",
            "--normalization_rule_name=" + norm,
        ]
        subprocess.run(cmd, cwd=tmp, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(tmp, "spiece.model"), "rb") as f:
            return f.read()


def spm_encode(model_path, text):
    r = subprocess.run(["spm_encode", "--model=" + model_path, "--output_format=id"],
                       input=(text + "\n").encode(), check=True, capture_output=True)
    line = r.stdout.decode().rstrip("\n")
    return [int(t) for t in line.split()] if line.strip() else []


def make_config(spec):
    vc = dict(spec["vision"])
    vc.update(model_type="siglip_vision_model", hidden_act="gelu_pytorch_tanh", attention_dropout=0.0,
              projection_dim=spec["text"]["d_model"])
    tc = dict(spec["text"])
    tc.update(model_type="t5", vocab_size=VOCAB, relative_attention_num_buckets=32,
              relative_attention_max_distance=128, decoder_start_token_id=0, eos_token_id=1,
              pad_token_id=0, is_encoder_decoder=True, dropout_rate=0.0,
              dense_act_fn="gelu_new" if tc["feed_forward_proj"] == "gated-gelu" else "silu",
              is_gated_act=True)
    return {
        "model_type": "pali3",
        "architectures": ["Pali3ForConditionalGeneration"],
        "torch_dtype": "float32" if spec["dtype"] == "F32" else "bfloat16",
        "projection_dim": tc["d_model"],
        "vision_config": vc,
        "text_config": tc,
    }


def random_weights(model, spec, rng):
    """Draws every checkpoint tensor. Scales keep activations O(1) and logits well apart."""
    out = {}
    vc, tc = spec["vision"], spec["text"]
    for name, param, kind in model._mapping():
        w = param.lin.weight if kind == "lin" else param
        shape = tuple(w.shape)
        n = name
        if kind == "lin":
            fan_in = shape[1]
            gain = 1.0
            if n.endswith(("q_proj.weight", "k_proj.weight")):
                gain = 1.5
            if n.endswith(("SelfAttention.q.weight", "SelfAttention.k.weight",
                           "EncDecAttention.q.weight", "EncDecAttention.k.weight")):
                gain = 1.0
            a = rng.normal(0, gain / np.sqrt(fan_in), shape)
            if n == "language_model.lm_head.weight":
                a = rng.normal(0, spec["head_std"], shape)
        elif kind == "conv":
            a = rng.normal(0, 1.5 / np.sqrt(shape[1] * shape[2] * shape[3]), shape)
        elif kind == "pos":
            a = rng.normal(0, 0.7, shape)
        elif kind == "embd":
            a = rng.normal(0, spec["embed_std"], shape)
        elif "relative_attention_bias" in n:
            a = rng.normal(0, 1.0, shape)
        elif n.endswith("bias"):
            a = rng.normal(0, 0.1, shape)
        else:  # norm weights
            a = 1.0 + rng.normal(0, 0.2, shape)
        out[name] = a.astype(np.float32)
    return out


def make_pixels(rng, sizes):
    """Frames of smooth random blobs plus noise, as CHW bytes."""
    frames = []
    for s in sizes:
        yy, xx = np.mgrid[0:s, 0:s] / s
        img = np.zeros((3, s, s))
        for _ in range(3):
            cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.4)
            col = rng.uniform(-1, 1, 3)
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
            img[:, mask] += col[:, None]
        img += rng.normal(0, 0.2, img.shape)
        u8 = np.clip(np.round((img + 1) * 127.5), 0, 255).astype(np.uint8)
        frames.append(u8)
    return frames


def to_float(u8):
    """The pixel values palid's test feeds: float32(v / 127.5 - 1)."""
    return (u8.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float64)


def r7(x):
    return [float("%.6g" % v) for v in np.asarray(x).ravel()]


def margin(lg):
    s = np.sort(np.asarray(lg))
    return float(s[-1] - s[-2])


def build(spec):
    name = spec["name"]
    spm_bytes = train_spm(spec["spm_norm"])
    config = make_config(spec)
    tmp = tempfile.mkdtemp()
    try:
        spm_path = os.path.join(tmp, "spiece.model")
        with open(spm_path, "wb") as f:
            f.write(spm_bytes)
        prompts = {c[0]: spm_encode(spm_path, c[2]) for c in spec["cases"]}
        answers = {c[0]: spm_encode(spm_path, c[3]) for c in spec["cases"]}
    finally:
        pass

    seed = spec["seed"]
    for attempt in range(200):
        s = seed + attempt
        torch.manual_seed(0)
        model = pali3_ref.Pali3(config)
        rng = np.random.default_rng(s)
        weights = random_weights(model, spec, rng)
        prng = np.random.default_rng(s + 7919)
        pixels = {c[0]: make_pixels(prng, c[1]) for c in spec["cases"]}
        weights, steps = train(config, weights, spec, pixels, prompts, answers, s)
        if spec["dtype"] == "BF16":
            weights = {k: pali3_ref.bf16_round(v) for k, v in weights.items()}
        ok, why, golden = run_cases(config, weights, spec, pixels, prompts)
        print("%s seed %d: %s" % (name, s, "ok" if ok else why), flush=True)
        if ok:
            break
    else:
        raise SystemExit("%s: no seed gave well separated decisions" % name)

    d = os.path.join(OUT, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    pali3_ref.write_safetensors(os.path.join(d, "model.safetensors"), weights, {"format": "pt"}, spec["dtype"])
    shutil.copy(spm_path, os.path.join(d, "spiece.model"))
    shutil.rmtree(tmp)
    for c in spec["cases"]:
        with open(os.path.join(d, "pix_%s.u8" % c[0]), "wb") as f:
            for fr in pixels[c[0]]:
                f.write(fr.tobytes())
    golden["seed"] = s
    golden["train_steps"] = steps
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    # Read back what was written: the reference must reproduce itself from the files.
    check = pali3_ref.Pali3.from_pretrained(d)
    c0 = spec["cases"][0]
    _, enc = check.encode([to_float(fr) for fr in pixels[c0[0]]], prompts[c0[0]])
    toks, _ = check.greedy(enc, MAX_TOKENS)
    assert toks == golden["cases"][0]["greedy"]["tokens"], "re-read checkpoint disagrees"
    return d


def train(config, weights, spec, pixels, prompts, answers, seed):
    """Teaches the random model its golden answers, briefly (Adam, float64).

    A random model's logits are a cloud of near-ties: the Q8_0 file's error
    (about 1% of a logit) flips some greedy step in nearly every case. A
    trained model is confident, as real ones are, so "Q8_0 answers match F32"
    is a property of the engine, not of luck. The F32 comparison does not
    depend on this: it checks every logit of every step.
    """
    torch.manual_seed(seed)
    m = pali3_ref.Pali3(config)
    m.load_tensors(weights)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    data = []
    for cname, _, _, _ in spec["cases"]:
        frames = [torch.from_numpy(to_float(fr)) for fr in pixels[cname]]
        ans = answers[cname]
        data.append((frames, prompts[cname], [m.start] + ans, torch.tensor(ans + [m.eos])))
    step = 0
    for step in range(1, TRAIN_STEPS + 1):
        opt.zero_grad()
        loss = 0.0
        worst = float("inf")
        for frames, ids, dec_in, target in data:
            vis = [m.projector(m.vision(f)) for f in frames]
            x = torch.cat(vis + [m.t5.shared(torch.tensor(ids + [m.eos]))], dim=0)
            lg = m.t5.decode_logits(m.t5.encode(x), dec_in)[:MAX_TOKENS]
            tgt = target[:MAX_TOKENS]
            loss = loss + torch.nn.functional.cross_entropy(lg, tgt, reduction="sum")
            with torch.no_grad():
                t = lg.gather(1, tgt[:, None])[:, 0]
                other = lg.scatter(1, tgt[:, None], float("-inf")).max(dim=1).values
                worst = min(worst, float((t - other).min()))
        if worst > 3 * MIN_TRAINED_MARGIN:
            break
        loss.backward()
        opt.step()
    out = {}
    for name, param, kind in m._mapping():
        w = param.lin.weight if kind == "lin" else param
        out[name] = w.detach().numpy().astype(np.float32)
    return out, step


def run_cases(config, weights, spec, pixels, prompts):
    ref = pali3_ref.Pali3(config)
    ref.load_tensors(weights)
    ref.eval()
    q8 = pali3_ref.Pali3(config)
    q8.load_tensors(weights, "q8_0")
    q8.eval()
    sims = {}
    for qn in ("f16", "q4_0"):
        m = pali3_ref.Pali3(config)
        m.load_tensors(weights, qn)
        m.eval()
        sims[qn] = m
    cases = []
    seen = set()
    for cname, sizes, prompt, answer in spec["cases"]:
        frames = [to_float(fr) for fr in pixels[cname]]
        ids = prompts[cname]
        vis, enc = ref.encode(frames, ids)
        toks, logits = ref.greedy(enc, MAX_TOKENS)
        margins = [margin(lg) for lg in logits]
        if min(margins) < max(MIN_MARGIN, MIN_TRAINED_MARGIN):
            return False, "case %s: greedy margin %.4g" % (cname, min(margins)), None
        trace = []
        btoks, bscore = ref.beam(enc, BEAM, MAX_TOKENS, trace)
        gap = min(abs(g) for _, g in trace)
        if gap < MIN_BEAM_GAP:
            return False, "case %s: beam gap %.4g" % (cname, gap), None
        # Q8_0 simulation must take the same greedy path, by a clear margin.
        _, qenc = q8.encode(frames, ids)
        qtoks, qlogits = q8.greedy(qenc, MAX_TOKENS)
        if qtoks != toks:
            return False, "case %s: q8_0 simulation %s != %s" % (cname, qtoks, toks), None
        qm = min(margin(lg) for lg in qlogits)
        if qm < MIN_Q8_MARGIN:
            return False, "case %s: q8_0 margin %.4g" % (cname, qm), None
        seen.add(tuple(toks))
        logprobs = [float(torch.log_softmax(torch.from_numpy(lg), -1)[t]) for lg, t in zip(logits, toks)]
        sim = {"q8_0": {"tokens": qtoks, "min_margin": float("%.4g" % qm),
                        "max_step_rel_err": step_err(ref, q8, enc, qenc, toks)}}
        if cname in SIM_LOGITS:
            sim["q8_0"]["logits"] = [r7(lg) for lg in qlogits]
        for qn, m in sims.items():
            _, menc = m.encode(frames, ids)
            mt, ml = m.greedy(menc, MAX_TOKENS)
            sim[qn] = {"tokens": mt, "min_margin": float("%.4g" % min(margin(lg) for lg in ml)),
                       "max_step_rel_err": step_err(ref, m, enc, menc, toks)}
            if cname in SIM_LOGITS:
                sim[qn]["logits"] = [r7(lg) for lg in ml]
        e = enc.numpy()
        v0 = vis[0].numpy()
        cases.append({
            "name": cname,
            "frames": len(sizes),
            "width": sizes[0],
            "height": sizes[0],
            "pixels": "pix_%s.u8" % cname,
            "prompt": prompt,
            "prompt_ids": ids,
            "trained_answer": answer,
            "visual": {
                "tokens_per_frame": [int(v.shape[0]) for v in vis],
                "first_rows": [r7(v0[i]) for i in range(2)],
                "frame_sums": [float("%.9g" % float(v.numpy().sum())) for v in vis],
                "frame_abs_sums": [float("%.9g" % float(np.abs(v.numpy()).sum())) for v in vis],
            },
            "encoder": {
                "tokens": int(e.shape[0]),
                "first_row": r7(e[0]),
                "last_row": r7(e[-1]),
                "sum": float("%.9g" % float(e.sum())),
                "abs_sum": float("%.9g" % float(np.abs(e).sum())),
            },
            "greedy": {
                "tokens": toks,
                "logprobs": r7(logprobs),
                "logits": [r7(lg) for lg in logits],
                "min_margin": float("%.4g" % min(margins)),
            },
            "beam": {"k": BEAM, "tokens": btoks, "score": float("%.9g" % bscore), "min_gap": float("%.4g" % gap)},
            "simulated": sim,
        })
    if len(seen) < 2:
        return False, "every case gives the same answer", None
    golden = {
        "model": spec["name"],
        "reference": "tools/reference/pali3_ref.py (torch float64)",
        "max_tokens": MAX_TOKENS,
        "decoder_start": 0,
        "eos": 1,
        "pixel_format": "u8 CHW per frame, frames concatenated; value = float32(v/127.5 - 1)",
        "cases": cases,
    }
    return True, "", golden


def step_err(ref, m, enc, menc, toks):
    """Max over the golden path's steps of max|a-b| / max(1, max|b|) (teacher forced)."""
    worst = 0.0
    path = [0] + toks
    for i in range(len(toks)):
        b = ref.step_logits(enc, path[: i + 1]).numpy()
        a = m.step_logits(menc, path[: i + 1]).numpy()
        worst = max(worst, float(np.abs(a - b).max() / max(1.0, np.abs(b).max())))
    return float("%.4g" % worst)


def main():
    torch.set_num_threads(1)
    for spec in MODELS:
        d = build(spec)
        total = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        g = json.load(open(os.path.join(d, "golden.json")))
        print("%s: %d bytes" % (d, total))
        for c in g["cases"]:
            print("  %-9s ids=%s greedy=%s beam=%s (%.4f) margin=%.3g gap=%.3g sim=%s" % (
                c["name"], c["prompt_ids"], c["greedy"]["tokens"], c["beam"]["tokens"], c["beam"]["score"],
                c["greedy"]["min_margin"], c["beam"]["min_gap"],
                {k: v["max_step_rel_err"] for k, v in c["simulated"].items()}))


if __name__ == "__main__":
    main()
