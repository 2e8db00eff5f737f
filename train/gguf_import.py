"""Reads a model palid converted (model.gguf and mmproj.gguf) back into
the Hugging Face tensor names train.py and pali.py use, so that training
can continue from the bundled model (models/default) when the float
checkpoint it came from is gone.

It is the inverse of runtime/convert: the same names, the shapes reversed
back to PyTorch's order, F32 and F16 copied, Q8_0 and Q4_0 dequantized
(so the weights come back as palid runs them, rounded to 8 or 4 bits).
Only what palid's converter writes is understood; anything else is an
error that names the tensor."""

import struct

import numpy as np

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0 = 0, 1, 2, 8
QK = 32


def _read_value(f, typ):
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    if typ in scalar:
        fmt = scalar[typ]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    if typ == 8:
        n = struct.unpack("<Q", f.read(8))[0]
        return f.read(n).decode("utf-8")
    if typ == 9:
        et, n = struct.unpack("<IQ", f.read(12))
        return [_read_value(f, et) for _ in range(n)]
    raise ValueError(f"unknown GGUF value type {typ}")


def read_gguf(path):
    """(metadata dict, {name: float32 numpy array in PyTorch's shape})."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        version, ntensors, nkv = struct.unpack("<IQQ", f.read(20))
        if version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {version}")
        meta = {}
        for _ in range(nkv):
            key = _read_value(f, 8)
            meta[key] = _read_value(f, struct.unpack("<I", f.read(4))[0])
        infos = []
        for _ in range(ntensors):
            name = _read_value(f, 8)
            ndim = struct.unpack("<I", f.read(4))[0]
            dims = struct.unpack(f"<{ndim}Q", f.read(8 * ndim))
            typ, off = struct.unpack("<IQ", f.read(12))
            infos.append((name, dims, typ, off))
        align = meta.get("general.alignment", 32)
        base = (f.tell() + align - 1) // align * align
        tensors = {}
        for name, dims, typ, off in infos:
            n = int(np.prod(dims))
            f.seek(base + off)
            if typ == GGML_F32:
                x = np.frombuffer(f.read(4 * n), "<f4")
            elif typ == GGML_F16:
                x = np.frombuffer(f.read(2 * n), "<f2").astype(np.float32)
            elif typ == GGML_Q8_0:
                b = np.frombuffer(f.read(n // QK * 34), np.uint8).reshape(-1, 34)
                d = b[:, :2].copy().view("<f2").astype(np.float32)
                q = b[:, 2:].copy().view(np.int8).astype(np.float32)
                x = (q * d).reshape(-1)
            elif typ == GGML_Q4_0:
                b = np.frombuffer(f.read(n // QK * 18), np.uint8).reshape(-1, 18)
                d = b[:, :2].copy().view("<f2").astype(np.float32)
                qs = b[:, 2:]
                q = np.concatenate([qs & 15, qs >> 4], 1).astype(np.float32) - 8
                x = (q * d).reshape(-1)
            else:
                raise ValueError(f"{path}: tensor {name} has GGML type {typ}, not F32, F16, Q8_0 or Q4_0")
            tensors[name] = x.reshape(tuple(reversed(dims))).astype(np.float32)
    return meta, tensors


def _names(vision_layers, enc_layers, dec_layers):
    """GGUF name -> Hugging Face name, as runtime/convert writes them."""
    pre = "vision_tower.vision_model."
    m = {"v.patch_embd.weight": pre + "embeddings.patch_embedding.weight",
         "v.patch_embd.bias": pre + "embeddings.patch_embedding.bias",
         "v.position_embd.weight": pre + "embeddings.position_embedding.weight",
         "v.post_ln.weight": pre + "post_layernorm.weight",
         "v.post_ln.bias": pre + "post_layernorm.bias",
         "mm.model.fc.weight": "multi_modal_projector.linear.weight",
         "mm.model.fc.bias": "multi_modal_projector.linear.bias"}
    for i in range(vision_layers):
        for dst, src in [("ln1", "layer_norm1"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
                         ("attn_v", "self_attn.v_proj"), ("attn_out", "self_attn.out_proj"),
                         ("ln2", "layer_norm2"), ("ffn_up", "mlp.fc1"), ("ffn_down", "mlp.fc2")]:
            for s in ("weight", "bias"):
                m[f"v.blk.{i}.{dst}.{s}"] = f"{pre}encoder.layers.{i}.{src}.{s}"
    t = "language_model."
    m["token_embd.weight"] = t + "shared.weight"
    m["output.weight"] = t + "lm_head.weight"
    m["enc.output_norm.weight"] = t + "encoder.final_layer_norm.weight"
    m["dec.output_norm.weight"] = t + "decoder.final_layer_norm.weight"
    ffn = [("ffn_gate", "wi_0"), ("ffn_up", "wi_1"), ("ffn_down", "wo")]
    for side, layers in (("enc", enc_layers), ("dec", dec_layers)):
        long = "encoder" if side == "enc" else "decoder"
        for i in range(layers):
            src, dst = f"{t}{long}.block.{i}.layer.", f"{side}.blk.{i}."
            m[dst + "attn_norm.weight"] = src + "0.layer_norm.weight"
            m[dst + "attn_rel_b.weight"] = src + "0.SelfAttention.relative_attention_bias.weight"
            for x in "qkvo":
                m[f"{dst}attn_{x}.weight"] = f"{src}0.SelfAttention.{x}.weight"
            last = "1."
            if side == "dec":
                m[dst + "cross_attn_norm.weight"] = src + "1.layer_norm.weight"
                for x in "qkvo":
                    m[f"{dst}cross_attn_{x}.weight"] = f"{src}1.EncDecAttention.{x}.weight"
                last = "2."
            m[dst + "ffn_norm.weight"] = src + last + "layer_norm.weight"
            for a, b in ffn:
                m[f"{dst}{a}.weight"] = f"{src}{last}DenseReluDense.{b}.weight"
    return m


def load(model_dir):
    """The state dict (numpy arrays, Hugging Face names) of palid's model in
    model_dir, and the text model's token list (to check the tokenizer)."""
    vmeta, vis = read_gguf(f"{model_dir}/mmproj.gguf")
    tmeta, txt = read_gguf(f"{model_dir}/model.gguf")
    names = _names(vmeta["clip.vision.block_count"], tmeta["t5.block_count"], tmeta["t5.decoder_block_count"])
    sd = {}
    for name, x in list(vis.items()) + list(txt.items()):
        if name not in names:
            raise ValueError(f"{model_dir}: tensor {name} is not one palid's converter writes")
        sd[names[name]] = x
    return sd, tmeta.get("tokenizer.ggml.tokens")
