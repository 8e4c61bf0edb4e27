#!/usr/bin/env python3
"""PyTorch anchor for `mmkd bench`: the same MulT-style models in plain PyTorch 2.x.

Implements, from mmkd's SPEC section 4 and docs/models.md (no code taken from MulT or any other
repository), the two networks the study is about:

* ``teacher_complete``: the Complete teacher. Per-modality Conv1d projections (bias-free, odd
  kernel, same padding), the six cross-modal transformers A<-V, L<-V, V<-A, L<-A, V<-L, A<-L
  (``Y<-X``: queries from X, keys/values from Y), the two of each branch concatenated on
  features and fed to the branch's self-attention memory transformer of width 2d, the read-out of
  the three memories concatenated (6d) and the residual head.
* ``student_5``: the video-only Language+Audio student. Three bias-free Conv1d proxies V_S, A_S,
  L_S of the video sequence (EDAM-S "downsample" geometry: A_S and L_S take the audio and text
  lengths), the transformers V<-V, V<-L, V<-A, their read-outs concatenated (3d) and the head.

Transformer encoder (pre-norm, as MulT/mmkd): ``x*sqrt(d)`` + fairseq sinusoidal positions
(sin half then cos half, positions 1..T), embedding dropout; per layer
``x += Drop(MHA(LN0(x), LN0(kv), LN0(kv)))`` and ``x += Drop(W2 Drop(ReLU(W1 LN1(x))))``; final
LayerNorm. Attention is ``F.scaled_dot_product_attention`` with one boolean mask combining MulT's
future mask ``triu(-inf, 1+|Tk-Tq|)`` and mmkd's key-padding mask (an all-zero raw input step is
padding); a query row that sees no key gives a zero attention output (mmkd's rule, never NaN).

It times a training step (forward + loss + backward + grad-norm clip + Adam, like `mmkd bench`)
and inference latency under ``torch.inference_mode``, eagerly and/or under ``torch.compile``.
See bench/README.md, section "PyTorch anchor (bench/mult_torch.py)".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Optional

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # numpy is optional

import torch
import torch.nn as nn
import torch.nn.functional as F

# Modality order everywhere: V (video), A (audio), L (language/text), as mmkd's InputShape.
MODALITIES = ("v", "a", "l")
V, A, L = 0, 1, 2

# Input shapes (lengths, feature sizes) of mmkd's synthetic presets (src/data/synthetic_options.cpp,
# include/mmkd/data/synthetic.h); feature sizes are MOSEI's (Facet 35, COVAREP 74, GloVe 300).
MOSEI_DIMS = (35, 74, 300)
SHAPES = {
    "tiny": ((16, 16, 8), MOSEI_DIMS),
    "small": ((48, 48, 20), MOSEI_DIMS),
    "mosei": ((500, 500, 50), MOSEI_DIMS),
    "mult": ((500, 500, 50), MOSEI_DIMS),  # MulT's MOSEI unaligned data: same as mosei
}

# Defaults of configs/models/teacher_complete.yaml and student_5.yaml.
MODEL_DEFAULTS = {
    "teacher_complete": dict(role="teacher", d_model=40, layers=4, heads=8, conv_kernel=3),
    "student_5": dict(role="student", d_model=64, layers=4, heads=8, conv_kernel=3),
}

# Figures stated by mmkd's SPEC / docs/models.md, checked by --check.
KNOWN_COUNTS = {
    "teacher complete d=40 L=4 k=1 (SPEC)": 1_542_047,
    "teacher complete d=40 L=4 k=3 (docs)": 1_574_767,
    "student 5 d=64 L=4 without proxies (docs)": 675_655,
    "student 5 proxies MOSEI d=64 (docs)": 35_840,
}


@dataclass
class ModelConfig:
    role: str = "teacher"  # teacher (Complete) | student (architecture 5)
    d_model: int = 40
    layers: int = 4
    heads: int = 8
    conv_kernel: int = 3
    readout: str = "last"  # last | mean (over unpadded steps)
    output: str = "classification"  # classification | regression (1 output, L1 loss)
    num_classes: int = 7
    attn_dropout: float = 0.1
    relu_dropout: float = 0.1
    res_dropout: float = 0.1
    embed_dropout: float = 0.25
    out_dropout: float = 0.0
    future_mask: bool = True
    mask_padding: bool = True
    proxy_mode: str = "downsample"  # student: downsample (EDAM-S) | keep (EDAM-T)
    target_lengths: Optional[list] = None  # student downsample: [Ta, Tl] (default: data's)
    proxy_kernels: Optional[list] = None  # student keep: [kV, kA, kL] (default: conv_kernel)

    @property
    def output_dim(self) -> int:
        return 1 if self.output == "regression" else self.num_classes

    def validate(self) -> None:
        if self.role not in ("teacher", "student"):
            raise ValueError(f"role must be teacher or student, got {self.role!r}")
        if self.d_model <= 0 or self.heads <= 0 or self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by heads {self.heads}")
        if self.layers < 1:
            raise ValueError(f"layers must be >= 1, got {self.layers}")
        if self.conv_kernel < 1 or self.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd, got {self.conv_kernel}")
        if self.readout not in ("last", "mean"):
            raise ValueError(f"readout must be last or mean, got {self.readout!r}")
        if self.output not in ("classification", "regression"):
            raise ValueError(f"output must be classification or regression, got {self.output!r}")
        if self.proxy_mode not in ("downsample", "keep"):
            raise ValueError(f"proxy_mode must be downsample or keep, got {self.proxy_mode!r}")
        for name in ("attn_dropout", "relu_dropout", "res_dropout", "embed_dropout"):
            p = getattr(self, name)
            if not 0 <= p < 1:
                raise ValueError(f"{name} must be in [0,1), got {p}")

    def describe(self) -> str:
        arch = "teacher complete" if self.role == "teacher" else "student 5 (language_audio)"
        out = "regression" if self.output == "regression" else f"{self.num_classes}-class"
        return (
            f"{arch} d={self.d_model} layers={self.layers} heads={self.heads} "
            f"kernel={self.conv_kernel} readout={self.readout} output={out}"
        )


# A stage: (query modality, key modalities, with memory). A key equal to the query is
# self-attention (the student's V<-V). Names follow mmkd: "Y<-X" has queries from X.
TEACHER_STAGES = ((V, (A, L), True), (A, (V, L), True), (L, (V, A), True))
STUDENT5_STAGES = ((V, (V,), False), (L, (V,), False), (A, (V,), False))


def module_name(query: int, key: int, memory: bool = False) -> str:
    """MulT's module name: Y<-X (queries X) is trans_x_with_y; mem:X is trans_x_mem."""
    q = MODALITIES[query]
    return f"trans_{q}_mem" if memory else f"trans_{q}_with_{MODALITIES[key]}"


def notation(query: int, key: int, memory: bool = False) -> str:
    letters = "VAL"
    return f"mem:{letters[query]}" if memory else f"{letters[key]}<-{letters[query]}"


# ----------------------------------------------------------------------------------------------
# Geometry and parameter formulas (mmkd: src/models/student.cpp, parameter_count.cpp)


def conv1d_output_length(n: int, kernel: int, stride: int, padding: int) -> int:
    span = n + 2 * padding - (kernel - 1) - 1
    return 0 if span < 0 else span // stride + 1


def same_length_geometry(kernel: int) -> tuple:
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"a length-keeping Conv1d needs an odd kernel, got {kernel}")
    return (kernel, 1, (kernel - 1) // 2)


def downsample_geometry(n_in: int, n_out: int, same_kernel: int) -> tuple:
    """(kernel, stride, padding) mapping n_in steps to n_out: stride floor(n_in/n_out), kernel
    n_in - stride*(n_out-1) (every step covered), no padding; equal lengths keep the length."""
    if not 1 <= n_out <= n_in:
        raise ValueError(f"a student proxy can only downsample: {n_in} -> {n_out}")
    if n_out == n_in:
        g = same_length_geometry(same_kernel)
    else:
        stride = n_in // n_out
        g = (n_in - stride * (n_out - 1), stride, 0)
    assert conv1d_output_length(n_in, *g) == n_out, (g, n_in, n_out)
    return g


def proxy_geometries(cfg: ModelConfig, lens: tuple) -> list:
    if cfg.proxy_mode == "keep":
        ks = cfg.proxy_kernels or [cfg.conv_kernel] * 3
        return [same_length_geometry(int(k)) for k in ks]
    ta, tl = cfg.target_lengths or (lens[A], lens[L])
    return [
        same_length_geometry(cfg.conv_kernel),
        downsample_geometry(lens[V], int(ta), cfg.conv_kernel),
        downsample_geometry(lens[V], int(tl), cfg.conv_kernel),
    ]


def encoder_parameter_count(d: int, layers: int) -> int:
    """layers * (MHA 4d^2+4d + FFN 8d^2+5d + 2 LayerNorms 4d) + final LayerNorm 2d."""
    return layers * (12 * d * d + 13 * d) + 2 * d


def head_parameter_count(width: int, out: int) -> int:
    return 2 * (width * width + width) + width * out + out


def formula_parameter_count(cfg: ModelConfig, lens: tuple, dims: tuple) -> dict:
    d = cfg.d_model
    stages = TEACHER_STAGES if cfg.role == "teacher" else STUDENT5_STAGES
    transformers, head_width = 0, 0
    for _, keys, memory in stages:
        n = len(keys)
        transformers += n * encoder_parameter_count(d, cfg.layers)
        if memory:
            transformers += encoder_parameter_count(n * d, cfg.layers)
        head_width += (n if memory else 1) * d
    head = head_parameter_count(head_width, cfg.output_dim)
    if cfg.role == "teacher":
        proj = sum(dims) * d * cfg.conv_kernel
    else:
        proj = dims[V] * d * sum(g[0] for g in proxy_geometries(cfg, lens))
    return {
        "projections": proj,
        "transformers": transformers,
        "head": head,
        "without_projections": transformers + head,
        "total": proj + transformers + head,
    }


# ----------------------------------------------------------------------------------------------
# Modules


def sinusoidal_positions(length: int, dim: int, device, dtype) -> torch.Tensor:
    """fairseq's table for positions 1..length: [sin | cos], frequencies exp(-i ln(1e4)/(h-1))."""
    half = dim // 2
    step = math.log(10000.0) / max(half - 1, 1)
    freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * -step)
    pos = torch.arange(1, length + 1, device=device, dtype=torch.float32).unsqueeze(1)
    angles = pos * freq.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(length, 1, device=device)], dim=1)
    return table.to(dtype)


def attention_mask(tq: int, tk: int, key_padding, future: bool, device):
    """SDPA mask (bool, True = may attend) and the query rows that see any key.

    Future mask: MulT's additive triu(-inf, 1 + |Tk-Tq|), i.e. row i sees keys j <= i + |Tk-Tq|.
    Key padding ([B,Tk], True = padded) hides keys. Rows left with no visible key are un-masked
    for SDPA (no NaN) and their output is multiplied by ``visible`` = 0 afterwards, which is
    mmkd's rule (an all-zero attention row). Returns (mask or None, visible [B,1,Tq,1] or None).
    """
    allowed = None
    if future:
        i = torch.arange(tq, device=device).unsqueeze(1)
        j = torch.arange(tk, device=device).unsqueeze(0)
        allowed = j <= i + abs(tk - tq)  # [Tq,Tk]
    if key_padding is None:
        return allowed, None
    keep = ~key_padding[:, None, None, :]  # [B,1,1,Tk]
    allowed = keep if allowed is None else keep & allowed  # [B,1,Tq|1,Tk]
    visible = allowed.any(dim=-1, keepdim=True)  # [B,1,Tq|1,1]
    return allowed | ~visible, visible


def last_row_of(mask, visible):
    if mask is not None:
        mask = mask[-1:] if mask.dim() == 2 else mask[..., -1:, :]
    if visible is not None:
        visible = visible[..., -1:, :]
    return mask, visible


class MultiheadAttention(nn.Module):
    """MulT's packed in_proj [3d,d] (rows Q, K, V) + out_proj; Xavier weights, zero biases."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.d, self.heads, self.dropout = d, heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d))
        self.out_proj = nn.Linear(d, d)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query, key, self_attention: bool, mask=None, visible=None):
        d, h = self.d, self.heads
        if self_attention:  # query is key is value: one packed projection
            q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            q = F.linear(query, self.in_proj_weight[:d], self.in_proj_bias[:d])
            k, v = F.linear(key, self.in_proj_weight[d:], self.in_proj_bias[d:]).chunk(2, dim=-1)
        b, tq, tk = query.shape[0], query.shape[1], key.shape[1]
        q = q.view(b, tq, h, d // h).transpose(1, 2)
        k = k.view(b, tk, h, d // h).transpose(1, 2)
        v = v.view(b, tk, h, d // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        if visible is not None:
            out = out * visible.to(out.dtype)
        return self.out_proj(out.transpose(1, 2).reshape(b, tq, d))


class EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, cfg: ModelConfig):
        super().__init__()
        self.self_attn = MultiheadAttention(d, heads, cfg.attn_dropout)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        self.layer_norm0 = nn.LayerNorm(d)
        self.layer_norm1 = nn.LayerNorm(d)
        self.relu_dropout, self.res_dropout = cfg.relu_dropout, cfg.res_dropout

    def forward(self, x, kv=None, mask=None, visible=None):
        q = self.layer_norm0(x)
        if kv is None:
            a = self.self_attn(q, q, True, mask, visible)
        else:  # the same LN0 for queries and keys/values
            a = self.self_attn(q, self.layer_norm0(kv), False, mask, visible)
        x = x + F.dropout(a, self.res_dropout, self.training)
        f = F.relu(self.fc1(self.layer_norm1(x)))
        f = self.fc2(F.dropout(f, self.relu_dropout, self.training))
        return x + F.dropout(f, self.res_dropout, self.training)


class TransformerEncoder(nn.Module):
    """Self-attention (kv None) or cross-modal (kv = the fixed embedded source at every layer)."""

    def __init__(self, d: int, heads: int, cfg: ModelConfig):
        super().__init__()
        self.d = d
        self.embed_dropout = cfg.embed_dropout
        self.layers = nn.ModuleList(EncoderLayer(d, heads, cfg) for _ in range(cfg.layers))
        self.layer_norm = nn.LayerNorm(d)

    def embed(self, x):
        pos = sinusoidal_positions(x.shape[1], self.d, x.device, x.dtype)
        return F.dropout(x * math.sqrt(self.d) + pos, self.embed_dropout, self.training)

    def forward(self, x, kv=None, mask=None, visible=None, last_row_only: bool = False):
        h = self.embed(x)
        source = None if kv is None else self.embed(kv)  # embedded once: one dropout mask
        # last_row_only (inference with last-step read-out, as mmkd): in cross form a row
        # depends only on the same row below, so every layer computes the last row alone; in
        # self form only the last layer can (its keys are all rows of the layer below).
        n = len(self.layers)
        first_row_layer = n if not last_row_only else (0 if kv is not None else n - 1)
        for i, layer in enumerate(self.layers):
            keys = source
            if i == first_row_layer:
                if source is None:
                    keys = h
                h = h[:, -1:]
                mask, visible = last_row_of(mask, visible)
            h = layer(h, keys, mask, visible)
        return self.layer_norm(h)


class ResidualHead(nn.Module):
    """h' = W2 Drop(ReLU(W1 h)) + h; logits = W_out h'."""

    def __init__(self, width: int, out: int, dropout: float):
        super().__init__()
        self.proj1 = nn.Linear(width, width)
        self.proj2 = nn.Linear(width, width)
        self.out_layer = nn.Linear(width, out)
        self.dropout = dropout

    def forward(self, h):
        hidden = F.dropout(F.relu(self.proj1(h)), self.dropout, self.training)
        return self.out_layer(self.proj2(hidden) + h)


def zero_padding_mask(x):
    """[B,T,F] -> [B,T] bool: a step whose raw feature vector is all zero is padding."""
    return (x == 0).all(dim=-1)


class MultimodalNet(nn.Module):
    """The Complete teacher (role teacher) or student 5 (role student)."""

    def __init__(self, cfg: ModelConfig, lens: tuple, dims: tuple):
        super().__init__()
        cfg.validate()
        self.cfg, self.lens, self.dims = cfg, tuple(lens), tuple(dims)
        d = cfg.d_model
        if cfg.role == "teacher":
            self.stages = TEACHER_STAGES
            k = cfg.conv_kernel
            self.geometries = [same_length_geometry(k)] * 3
            self.projections = nn.ModuleDict(
                {
                    f"proj_{m}": nn.Conv1d(dims[i], d, k, padding=(k - 1) // 2, bias=False)
                    for i, m in enumerate(MODALITIES)
                }
            )
        else:
            self.stages = STUDENT5_STAGES
            self.geometries = proxy_geometries(cfg, lens)
            self.projections = nn.ModuleDict(
                {
                    f"proxy_{m}": nn.Conv1d(dims[V], d, g[0], stride=g[1], padding=g[2], bias=False)
                    for m, g in zip(MODALITIES, self.geometries)
                }
            )
        self.transformers = nn.ModuleDict()
        head_width = 0
        for query, keys, memory in self.stages:
            for key in keys:
                self.transformers[module_name(query, key)] = TransformerEncoder(d, cfg.heads, cfg)
            if memory:
                self.transformers[module_name(query, query, True)] = TransformerEncoder(
                    len(keys) * d, cfg.heads, cfg
                )
            head_width += (len(keys) if memory else 1) * d
        self.head = ResidualHead(head_width, cfg.output_dim, cfg.out_dropout)

    def projected_lengths(self) -> list:
        n_in = self.lens if self.cfg.role == "teacher" else (self.lens[V],) * 3
        return [conv1d_output_length(n, *g) for n, g in zip(n_in, self.geometries)]

    def project(self, v, a, l):
        """Projected sequences [B,T,d] and padding masks [B,T] (or None) of V, A, L."""
        if self.cfg.role == "teacher":
            raw = (v, a, l)
            seqs = [
                conv(x.transpose(1, 2)).transpose(1, 2)
                for conv, x in zip(self.projections.values(), raw)
            ]
            pads = [zero_padding_mask(x) for x in raw] if self.cfg.mask_padding else [None] * 3
            return seqs, pads
        x = v.transpose(1, 2)
        seqs = [conv(x).transpose(1, 2) for conv in self.projections.values()]
        if not self.cfg.mask_padding:
            return seqs, [None] * 3
        video_pad = zero_padding_mask(v)
        pads = []
        for g, s in zip(self.geometries, seqs):
            if g[1] == 1 and s.shape[1] == v.shape[1]:
                pads.append(video_pad)  # same length: step t is padding iff video step t is
            else:  # a proxy step is padding when no real video step falls in its window
                valid = (~video_pad).to(v.dtype).unsqueeze(1)
                window = torch.ones(1, 1, g[0], dtype=v.dtype, device=v.device)
                pads.append(F.conv1d(valid, window, stride=g[1], padding=g[2]).squeeze(1) <= 0)
        return seqs, pads

    def readout(self, h, pad):
        if self.cfg.readout == "last":
            return h[:, -1]
        if pad is None:
            return h.mean(dim=1)
        valid = (~pad).to(h.dtype).unsqueeze(-1)
        return (h * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0)

    def forward(self, v, a=None, l=None, last_row: bool = False):
        """Logits [B, num_classes] (or [B,1]). ``last_row``: compute only the read-out row of
        the read-out transformers (mmkd's inference path; needs readout last)."""
        seqs, pads = self.project(v, a, l)
        last_row = last_row and self.cfg.readout == "last"
        future = self.cfg.future_mask
        masks = {}  # (query, key) -> (mask, visible), shared by every layer and transformer

        def mask_for(q, k):
            if (q, k) not in masks:
                tq, tk = seqs[q].shape[1], seqs[k].shape[1]
                masks[(q, k)] = attention_mask(tq, tk, pads[k], future, seqs[q].device)
            return masks[(q, k)]

        readouts = []
        for query, keys, memory in self.stages:
            outputs = []
            for key in keys:
                enc = self.transformers[module_name(query, key)]
                kv = None if key == query else seqs[key]
                out_row = last_row and not memory
                outputs.append(enc(seqs[query], kv, *mask_for(query, key), last_row_only=out_row))
            h = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
            if memory:
                enc = self.transformers[module_name(query, query, True)]
                h = enc(h, None, *mask_for(query, query), last_row_only=last_row)
            readouts.append(self.readout(h, pads[query]))
        return self.head(torch.cat(readouts, dim=-1))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------------------
# Configuration


def parse_model_yaml(path: str) -> dict:
    """The flat `model:` section of an mmkd model config (key: value, # comments)."""
    values, in_model = {}, False
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].rstrip()
            if not line.strip():
                continue
            if not line.startswith((" ", "\t")):
                in_model = line.strip() == "model:"
                continue
            if in_model and ":" in line:
                key, value = (s.strip() for s in line.split(":", 1))
                values[key] = value
    if not values:
        raise ValueError(f"{path}: no model: section")
    return values


def config_from_yaml(path: str) -> tuple:
    """(model name, ModelConfig overrides) from an mmkd YAML model config."""
    raw = parse_model_yaml(path)
    role, arch = raw.get("role"), raw.get("architecture", "complete")
    if role == "teacher" and arch == "complete":
        name = "teacher_complete"
    elif role == "student" and arch in ("language_audio", "5"):
        name = "student_5"
    else:
        raise ValueError(
            f"{path}: role {role} architecture {arch}: only the complete teacher and student 5 "
            "are implemented here"
        )
    fields = {f: t for f, t in ModelConfig.__annotations__.items()}
    out = {}
    for key, value in raw.items():
        if key in ("architecture",):
            continue
        if key not in fields:
            raise ValueError(f"{path}: unknown model key {key!r}")
        kind = fields[key]
        if kind == "int":
            out[key] = int(value)
        elif kind == "float":
            out[key] = float(value)
        elif kind == "bool":
            out[key] = value.lower() in ("true", "yes", "1", "on")
        elif kind.startswith("Optional[list"):
            out[key] = [int(x) for x in value.strip("[]").split(",") if x.strip()]
        else:
            out[key] = value
    return name, out


def int_triple(text: str) -> tuple:
    parts = [int(x) for x in text.split(",")]
    if len(parts) != 3 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"expected three positive integers V,A,L, got {text!r}")
    return tuple(parts)


def build_config(args) -> tuple:
    name = args.model
    overrides = {}
    if args.config:
        cfg_name, overrides = config_from_yaml(args.config)
        if name and name != cfg_name:
            raise SystemExit(f"--model {name} contradicts --config {args.config} ({cfg_name})")
        name = cfg_name
    name = name or "teacher_complete"
    values = dict(MODEL_DEFAULTS[name])
    values.update(overrides)
    cli = {
        "d_model": args.d_model,
        "layers": args.layers,
        "heads": args.heads,
        "conv_kernel": args.kernel,
        "readout": args.readout,
        "output": args.output,
        "future_mask": args.future_mask,
        "mask_padding": args.mask_padding,
        "proxy_mode": args.proxy_mode,
        "attn_dropout": args.attn_dropout,
    }
    values.update({k: v for k, v in cli.items() if v is not None})
    cfg = ModelConfig(**values)
    cfg.validate()
    return name, cfg


def input_shape(args) -> tuple:
    lens, dims = SHAPES[args.shape]
    return (args.len or lens), (args.dim or dims)


# ----------------------------------------------------------------------------------------------
# Measurement helpers


def _proc_status_kib(field_name: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def current_rss_bytes() -> Optional[int]:
    try:
        import psutil  # optional

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        kib = _proc_status_kib("VmRSS")
        return None if kib is None else kib * 1024


def reset_peak_rss() -> bool:
    """Resets the kernel's RSS high-water mark (Linux), as mmkd bench does."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> tuple:
    """(bytes, method): VmHWM (resettable) if readable, else ru_maxrss (process lifetime)."""
    kib = _proc_status_kib("VmHWM")
    if kib is not None:
        return kib * 1024, "VmHWM"
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (maxrss if sys.platform == "darwin" else maxrss * 1024), "ru_maxrss"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def summarize(ms: list) -> dict:
    s = sorted(ms)

    def at(q):
        return s[int(q * (len(s) - 1) + 0.5)]

    return {
        "n": len(s),
        "median_ms": statistics.median(s),
        "min_ms": s[0],
        "p10_ms": at(0.1),
        "p90_ms": at(0.9),
        "max_ms": s[-1],
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_batch(lens, dims, batch, device, seed):
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(batch, t, f, generator=g).to(device) for t, f in zip(lens, dims)]
    classes = torch.randint(0, 7, (batch,), generator=g).to(device)
    targets = (torch.rand(batch, generator=g) * 6 - 3).to(device)
    return feats, classes, targets


def loss_fn(cfg: ModelConfig, logits, classes, targets):
    if cfg.output == "regression":
        return F.l1_loss(logits.view(-1), targets)
    return F.cross_entropy(logits, classes)


def make_model(cfg, lens, dims, device, seed):
    torch.manual_seed(seed)
    return MultimodalNet(cfg, lens, dims).to(device)


def bench_mode(mode: str, cfg, lens, dims, args, device) -> dict:
    model = make_model(cfg, lens, dims, device, args.seed)
    result = {"mode": mode}
    fwd = model
    if mode == "compile":
        fwd = torch.compile(model, **({"mode": args.compile_mode} if args.compile_mode else {}))

    # --- train step: forward + loss + backward + clip + Adam (mmkd bench's step) ---
    if args.steps > 0:
        model.train()
        params = list(model.parameters())
        opt = torch.optim.Adam(params, lr=args.lr)
        feats, classes, targets = random_batch(lens, dims, args.batch, device, args.seed + 1)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(cfg, fwd(*feats), classes, targets)
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, args.clip)
            opt.step()
            return loss.item()  # a host sync, as mmkd's loss.item()

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            mem_before = torch.cuda.memory_allocated(device)
        else:
            mem_before = current_rss_bytes()
        warmup = max(args.warmup, 2 if mode == "compile" else 0)
        warm_ms = []
        for _ in range(warmup):
            t0 = time.perf_counter()
            step()
            sync(device)
            warm_ms.append((time.perf_counter() - t0) * 1e3)
        hwm_reset = reset_peak_rss() if device.type == "cpu" else False
        ms, losses = [], []
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        for _ in range(args.steps):
            t0 = time.perf_counter()
            losses.append(step())
            sync(device)
            ms.append((time.perf_counter() - t0) * 1e3)
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        if not all(math.isfinite(x) for x in losses):
            raise RuntimeError(f"non-finite loss: {losses}")
        train = summarize(ms)
        train["samples_per_s"] = args.batch / (train["median_ms"] * 1e-3)
        train["warmup_ms"] = warm_ms
        train["cpu_s"] = cpu
        train["cpu_utilisation"] = cpu / wall if wall > 0 else None
        train["last_loss"] = losses[-1]
        if device.type == "cuda":
            train["peak_bytes"] = torch.cuda.max_memory_allocated(device)
            train["before_bytes"] = mem_before
            train["peak_delta_bytes"] = train["peak_bytes"] - mem_before
            train["memory_method"] = "torch.cuda.max_memory_allocated"
        else:
            peak, method = peak_rss_bytes()
            train["peak_bytes"] = peak
            train["before_bytes"] = mem_before
            train["peak_delta_bytes"] = None if mem_before is None else peak - mem_before
            train["memory_method"] = (
                f"{method} (high-water mark reset after warm-up)" if hwm_reset else method
            )
        result["train"] = train
        del opt

    # --- inference: eval(), torch.inference_mode(), mmkd's last-row path unless --infer-rows all
    if args.inference_batches:
        model.eval()
        last_row = args.infer_rows == "last"
        inference = []
        for b in args.inference_batches:
            feats, _, _ = random_batch(lens, dims, b, device, args.seed + 2)
            repeats = max(5, 4 * args.steps) if b == 1 else max(3, args.steps)
            ms = []
            with torch.inference_mode():
                for _ in range(2 if mode == "eager" else 3):
                    fwd(*feats, last_row=last_row)
                sync(device)
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    out = fwd(*feats, last_row=last_row)
                    sync(device)
                    ms.append((time.perf_counter() - t0) * 1e3)
            assert tuple(out.shape) == (b, cfg.output_dim), out.shape
            r = summarize(ms)
            r["batch"] = b
            r["samples_per_s"] = b / (r["median_ms"] * 1e-3)
            inference.append(r)
        result["inference"] = inference
        result["inference_rows"] = "last" if (last_row and cfg.readout == "last") else "all"
    return result


def sdpa_kernel_used(device, dropout: float, masked: bool, training: bool) -> str:
    """The aten kernel SDPA dispatches to for this model's calls (a small probe, forward)."""
    try:
        from torch.utils._python_dispatch import TorchDispatchMode

        class Record(TorchDispatchMode):
            def __init__(self):
                super().__init__()
                self.ops = []

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                self.ops.append(str(func.overloadpacket.__name__))
                return func(*args, **(kwargs or {}))

        q = torch.randn(2, 2, 8, 8, device=device, requires_grad=training)
        mask = torch.ones(2, 1, 8, 8, dtype=torch.bool, device=device).tril() if masked else None
        with torch.set_grad_enabled(training), Record() as rec:
            F.scaled_dot_product_attention(
                q, q, q, attn_mask=mask, dropout_p=dropout if training else 0.0
            )
        fused = [op for op in rec.ops if op.startswith("_scaled_dot_product")]
        return fused[0] if fused else "math (unfused matmul + softmax + dropout)"
    except Exception as e:  # informative only
        return f"unknown ({type(e).__name__})"


def mib(x) -> str:
    return "n/a" if x is None else f"{x / 2**20:.1f} MiB"


def summary_line(name: str, cfg: ModelConfig, r: dict) -> str:
    head = f"{r['mode']:<8s}{name} d={cfg.d_model} L={cfg.layers} H={cfg.heads} k={cfg.conv_kernel}"
    if "error" in r:
        return f"{head} | FAILED: {r['error']}"
    parts = [head]
    if "train" in r:
        t = r["train"]
        parts.append(
            f"train step median {t['median_ms']:.2f} ms (min {t['min_ms']:.2f}, n={t['n']}), "
            f"{t['samples_per_s']:.1f} samples/s, peak {mib(t['peak_bytes'])} "
            f"(delta {mib(t['peak_delta_bytes'])})"
        )
    for i in r.get("inference", []):
        parts.append(
            f"infer b{i['batch']} median {i['median_ms']:.2f} ms (min {i['min_ms']:.2f}) "
            f"[{r['inference_rows']} rows]"
        )
    return " | ".join(parts)


# ----------------------------------------------------------------------------------------------
# Self-check


def reference_attention(mha: MultiheadAttention, q_in, kv_in, tq, tk, key_pad, future):
    """Materialised MulT/mmkd attention: additive masks, -inf padding, all-zero empty rows."""
    d, h = mha.d, mha.heads
    w, b = mha.in_proj_weight, mha.in_proj_bias
    q = F.linear(q_in, w[:d], b[:d]).view(q_in.shape[0], tq, h, d // h).transpose(1, 2)
    k = F.linear(kv_in, w[d : 2 * d], b[d : 2 * d]).view(kv_in.shape[0], tk, h, -1).transpose(1, 2)
    v = F.linear(kv_in, w[2 * d :], b[2 * d :]).view(kv_in.shape[0], tk, h, -1).transpose(1, 2)
    logits = q @ k.transpose(-2, -1) / math.sqrt(d // h)
    if future:
        logits = logits + torch.full((tq, tk), float("-inf")).triu(1 + abs(tk - tq))
    if key_pad is not None:
        logits = logits.masked_fill(key_pad[:, None, None, :], float("-inf"))
    visible = (logits != float("-inf")).any(-1, keepdim=True)
    weights = torch.softmax(logits.masked_fill(~visible, 0.0), -1).masked_fill(~visible, 0.0)
    out = (weights @ v).transpose(1, 2).reshape(q_in.shape[0], tq, d)
    return mha.out_proj(out)


def self_check(name: str, cfg: ModelConfig, lens, dims, device) -> dict:
    report = {"checks": []}

    def ok(what, cond, detail=""):
        report["checks"].append({"check": what, "ok": bool(cond), "detail": detail})
        print(f"  [{'ok' if cond else 'FAIL'}] {what}{': ' + detail if detail else ''}")
        return cond

    # 1. parameter formulas against the figures stated by SPEC/docs and against built models
    t40 = ModelConfig(role="teacher", d_model=40, layers=4, heads=8, conv_kernel=1)
    ok(
        "formula: teacher complete d=40 L=4 k=1 = 1,542,047 (SPEC)",
        formula_parameter_count(t40, SHAPES["mosei"][0], MOSEI_DIMS)["total"] == 1_542_047,
    )
    t40k3 = replace(t40, conv_kernel=3)
    ok(
        "formula: teacher complete d=40 L=4 k=3 = 1,574,767 (docs)",
        formula_parameter_count(t40k3, SHAPES["mosei"][0], MOSEI_DIMS)["total"] == 1_574_767,
    )
    s5 = ModelConfig(role="student", d_model=64, layers=4, heads=8, conv_kernel=3)
    s5f = formula_parameter_count(s5, SHAPES["mosei"][0], MOSEI_DIMS)
    ok(
        "formula: student 5 d=64 without proxies = 675,655, MOSEI proxies = 35,840 (docs)",
        s5f["without_projections"] == 675_655 and s5f["projections"] == 35_840,
    )
    for label, c in (("teacher d=40 k=1", t40), ("student 5 d=64", s5)):
        n = count_parameters(MultimodalNet(c, SHAPES["mosei"][0], MOSEI_DIMS))
        f = formula_parameter_count(c, SHAPES["mosei"][0], MOSEI_DIMS)["total"]
        ok(f"built {label} at MOSEI shape has the formula's count", n == f, f"{n:,} vs {f:,}")

    # 2. the configured model: count, output shape, finite loss
    torch.manual_seed(0)
    model = MultimodalNet(cfg, lens, dims).to(device)
    n, f = count_parameters(model), formula_parameter_count(cfg, lens, dims)["total"]
    ok(f"{name}: parameter count == formula", n == f, f"{n:,} vs {f:,}")
    if cfg.role == "student" and cfg.proxy_mode == "downsample":
        want = [lens[V], *(cfg.target_lengths or (lens[A], lens[L]))]
        ok(
            "student proxy lengths (Conv1d output-length formula)",
            model.projected_lengths() == list(want),
            f"{model.projected_lengths()} geometries (k,s,p) {model.geometries}",
        )
    b = 3
    feats, classes, targets = random_batch(lens, dims, b, device, 1)
    # front padding as MOSEI: sample 1 padded on its first half, sample 2 entirely padded
    for x in feats:
        x[1, : x.shape[1] // 2] = 0
        x[2] = 0
    model.train()
    logits = model(*feats)
    loss = loss_fn(cfg, logits, classes, targets)
    loss.backward()
    grads_ok = all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    ok(
        f"train forward output shape is [B,{cfg.output_dim}] and loss/grads finite",
        tuple(logits.shape) == (b, cfg.output_dim) and math.isfinite(loss.item()) and grads_ok,
        f"shape {tuple(logits.shape)}, loss {loss.item():.4f}",
    )
    model.eval()
    with torch.no_grad():
        full = model(*feats)
    with torch.inference_mode():
        last = model(*feats, last_row=True)
    ok(
        f"eval output [B,{cfg.output_dim}] finite; last-row inference == full forward",
        tuple(full.shape) == (b, cfg.output_dim)
        and torch.isfinite(full).all()
        and torch.allclose(full, last, atol=1e-4, rtol=1e-4),
        f"max |diff| {(full - last).abs().max().item():.2e}",
    )

    # 3. SDPA + combined mask == materialised reference on padded inputs (cross and self)
    torch.manual_seed(1)
    mha = MultiheadAttention(16, 4, 0.0).eval()
    for tq, tk, self_attention in ((5, 9, False), (9, 5, False), (5, 4, False), (7, 7, True)):
        qx = torch.randn(3, tq, 16)
        kx = qx if self_attention else torch.randn(3, tk, 16)
        pad = torch.zeros(3, tk, dtype=torch.bool)
        pad[1, : tk // 2] = True  # front padding
        pad[2] = True  # an all-padded sample: every row empty -> out_proj bias
        for future in (True, False):
            mask, visible = attention_mask(tq, tk, pad, future, qx.device)
            with torch.no_grad():
                got = mha(qx, kx, self_attention, mask, visible)
                want = reference_attention(mha, qx, kx, tq, tk, pad, future)
            kind = "self" if self_attention else "cross"
            ok(
                f"SDPA == reference attention ({kind} Tq={tq} Tk={tk} future={future}, padding)",
                torch.allclose(got, want, atol=1e-5) and bool(torch.isfinite(got).all()),
                f"max |diff| {(got - want).abs().max().item():.2e}",
            )
    report["ok"] = all(c["ok"] for c in report["checks"])
    return report


# ----------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="PyTorch anchor for mmkd bench: MulT Complete teacher / student 5, "
        "train step and inference latency (eager and/or torch.compile).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        choices=sorted(MODEL_DEFAULTS),
        default=None,
        help="network (default teacher_complete, or what --config names)",
    )
    p.add_argument(
        "--config",
        help="mmkd YAML model config (configs/models/*.yaml); "
        "only the complete teacher and student 5 (language_audio)",
    )
    p.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="mosei",
        help="input lengths V/A/L: tiny 16/16/8, small 48/48/20, mosei|mult 500/500/50",
    )
    p.add_argument("--len", type=int_triple, help="explicit lengths V,A,L (overrides --shape)")
    p.add_argument(
        "--dim", type=int_triple, help="explicit feature sizes V,A,L (default 35,74,300)"
    )
    p.add_argument("--batch", type=int, default=64, help="training batch")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (0 = torch's default)")
    p.add_argument("--steps", type=int, default=5, help="timed train steps (0: no training)")
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed train steps first (compile: >= 2)"
    )
    p.add_argument("--mode", choices=("eager", "compile", "both"), default="eager")
    p.add_argument(
        "--compile-mode",
        default=None,
        help="torch.compile mode (default, reduce-overhead, max-autotune)",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--d-model", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--kernel", type=int, default=None, help="Conv1d kernel (conv_kernel, odd)")
    p.add_argument("--readout", choices=("last", "mean"), default=None)
    p.add_argument(
        "--output",
        choices=("classification", "regression"),
        default=None,
        help="7-class cross-entropy, or 1 output with L1 (MulT's protocol)",
    )
    p.add_argument("--future-mask", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--mask-padding", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--proxy-mode", choices=("downsample", "keep"), default=None)
    p.add_argument(
        "--attn-dropout",
        type=float,
        default=None,
        help="attention dropout (mmkd 0.1; on CPU SDPA has no fused kernel with dropout > 0)",
    )
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--clip", type=float, default=0.8, help="grad-norm clip as mmkd bench (0: none)")
    p.add_argument(
        "--inference-batches",
        default="1",
        help="comma-separated inference batch sizes ('' for none)",
    )
    p.add_argument(
        "--infer-rows",
        choices=("last", "all"),
        default="last",
        help="inference computes only the read-out row (mmkd's path) or every row",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--check",
        action="store_true",
        help="run the correctness self-check (parameter formulas, [B,7] output, "
        "masked SDPA vs a reference) and exit",
    )
    p.add_argument("--json", help="write the results to this JSON file")
    args = p.parse_args(argv)
    args.inference_batches = [int(x) for x in args.inference_batches.split(",") if x.strip()]

    if args.threads > 0:  # 0: torch's default (all cores), as mmkd's --threads 0
        torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    name, cfg = build_config(args)
    lens, dims = input_shape(args)
    counts = formula_parameter_count(cfg, lens, dims)

    record = {
        "script": "bench/mult_torch.py",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "model_name": name,
        "model": cfg.describe(),
        "config": asdict(cfg),
        "shape": {"len": list(lens), "dim": list(dims)},
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "clip": args.clip,
        "lr": args.lr,
    }
    print(f"model    {cfg.describe()}")
    print(
        f"inputs   V {lens[V]}x{dims[V]}, A {lens[A]}x{dims[A]}, L {lens[L]}x{dims[L]}, "
        f"batch {args.batch}, threads {torch.get_num_threads()}, device {record['device']}, "
        f"torch {torch.__version__}"
    )

    if args.check:
        print(f"check    {name}")
        report = self_check(name, cfg, lens, dims, device)
        record["check"] = report
        print("check    " + ("OK" if report["ok"] else "FAILED"))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=2)
        return 0 if report["ok"] else 1

    masked = cfg.future_mask or cfg.mask_padding
    record["sdpa_kernel"] = {
        "train": sdpa_kernel_used(device, cfg.attn_dropout, masked, True),
        "inference": sdpa_kernel_used(device, cfg.attn_dropout, masked, False),
    }
    print(
        f"sdpa     train {record['sdpa_kernel']['train']}, "
        f"inference {record['sdpa_kernel']['inference']}"
    )
    n = count_parameters(make_model(cfg, lens, dims, torch.device("cpu"), args.seed))
    if n != counts["total"]:
        raise SystemExit(f"parameter count {n} differs from the formula {counts['total']}")
    record["parameters"] = dict(counts, counted=n)
    print(
        f"params   {n:,} (projections {counts['projections']:,}, transformers "
        f"{counts['transformers']:,}, head {counts['head']:,}; == mmkd's formula)"
    )

    modes = ("eager", "compile") if args.mode == "both" else (args.mode,)
    record["modes"] = {}
    for mode in modes:
        try:
            r = bench_mode(mode, cfg, lens, dims, args, device)
        except Exception as e:  # compile failures are reported, not fatal
            if mode != "compile":
                raise
            r = {"mode": mode, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:500]}"}
            r["traceback"] = traceback.format_exc(limit=8)[-4000:]
        record["modes"][mode] = r
        print(summary_line(name, cfg, r))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
        print(f"json     {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
