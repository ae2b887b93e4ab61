"""Conformance corpus: small PyTorch models exported to ONNX, with PyTorch oracles for hooks and interventions.

Run with Debian's python3-torch (1.13), python3-torchvision and python3-onnx:  bash test/corpus/make.sh
(npm test never runs this; the files it writes are committed.)  Every model folder <model>/ holds:

  opset14.onnx, opset17.onnx  torch.onnx.export with torch's default flags (eval mode, constant folding on, so
                              BatchNorm folds into the preceding Conv), dynamic axis `batch` on every input and output
                              (and `seq` on token inputs of models that allow any length); resnet18's opset17.onnx
                              keeps its weights in opset17.onnx.data (external data)
  inputs/<input>.npy          4 examples (images uniform [0,1] float32, tokens int64, attention_mask int64 1/0)
  corrupted/<input>.npy       4 other examples of the same shape (the source of patches)
  outputs/<output>.npy        PyTorch's outputs on inputs
  act/<hook>.npy              the output of every call of every named submodule (root excluded), recorded with
                              forward hooks on inputs; a module called k times gives hooks name, name_1, ...,
                              name_{k-1} in call order (torch.fx's convention); for a module returning a tuple
                              (LSTM, GRU, MultiheadAttention) its first element ("tuple_index": 0)
  donors.npy                  int64 [4], a derangement: resample ablation gives example i the clean value of donors[i]
  patch/<id>.npy              full [4, ...] values patched in by intervention <id> (the hook on corrupted inputs)
  interventions/<id>/<output>.npy  PyTorch's outputs when one call's output (or its tuple's first element) is
                              replaced by a forward hook; all other calls run normally
  grad/target.npy, grad/param/<name>.npy, grad/input/<input>.npy
                              PyTorch autograd: the mean cross-entropy of the output's last axis (classes) against
                              targets (argmax + 1 + row) mod classes, rows flattened, and its gradient with respect to
                              every parameter (PyTorch's names) and every float input
  manifest.json               names, shapes, dtypes and the list of hooks and interventions

Hooks are listed in the order their forward hooks fire (a module's hook fires when its call returns, so a
container comes after its children); every hook's value depends only on hooks listed before it.
"passthrough": true marks a call whose output equals its first input numerically (Dropout in eval, StochasticDepth,
and AdaptiveAvgPool2d on a 1x1 map); "batched": false marks a hook without the batch on axis 0 (gpt2's wpe).
Interventions (<i> is the hook's index in the manifest's hooks), on hooks with a float output batched on axis 0:
  zero-<i>      zero ablation of hook i on units 0, 2, 4, ... along unit_axis, for every such hook i
  for the first, middle (index len // 2) and last such hook that is not passthrough:
  mean-<i>      mean over the 4 examples (axis 0) of the clean value, on the unit subset
  resample-<i>  clean value of example donors[n] for example n, on the unit subset
  patch-<i>     value on the corrupted inputs (patch/patch-<i>.npy), on the unit subset
  scale-<i>     the value times factor, on the unit subset
  meanpos-<i>   [batch, seq, d] hooks only: mean ablation of sequence position -1 (axis 1), all units
unit_axis: 1 for conv maps ([batch, C, H, W], and [batch, C, L] in the Conv1d model), else the last axis; the
manifest lists units and unit_axis explicitly. Every forward pass (oracles and export trace) runs with grad enabled,
which keeps torch 1.13's TransformerEncoderLayer/MultiheadAttention off their inference fast path.
"""
import json, math, os, shutil, sys
import numpy as np
import onnx
import torch, torch.nn as nn, torch.nn.functional as F
from torchvision.models import mobilenet_v3_small
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.models.vision_transformer import VisionTransformer

OUT = os.path.dirname(os.path.abspath(__file__))
BATCH = 4
DONORS = np.array([2, 3, 1, 0], dtype=np.int64)
SCALE = 2.5
OPSETS = (14, 17)  # 14 is torch 1.13's default


# ---------------------------------------------------------------------------------------------------- models
class SmallResNet18(ResNet):
    """torchvision's ResNet-18 with every channel width divided by 8 (planes 8, 16, 32, 64)."""
    def __init__(self, num_classes=10):
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        self.inplanes = 8  # rebuild every layer at 1/8 width; attribute order (and so module order) is kept
        self.conv1 = nn.Conv2d(3, 8, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = self._make_layer(BasicBlock, 8, 2)
        self.layer2 = self._make_layer(BasicBlock, 16, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 32, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 64, 2, stride=2)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class CausalSelfAttention(nn.Module):
    def __init__(self, d, n_head, ctx):
        super().__init__()
        self.n_head, self.head_dim = n_head, d // n_head
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.attn_dropout = nn.Dropout(0.1)
        self.resid_dropout = nn.Dropout(0.1)
        self.register_buffer("bias", torch.tril(torch.ones(ctx, ctx)).view(1, 1, ctx, ctx))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class GPT2MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc, self.gelu, self.c_proj, self.dropout = nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(0.1)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class GPT2Block(nn.Module):
    def __init__(self, d, n_head, ctx):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(d), CausalSelfAttention(d, n_head, ctx)
        self.ln_2, self.mlp = nn.LayerNorm(d), GPT2MLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """GPT-2-style decoder (nanoGPT layout); lm_head is tied to wte; positions come from torch.arange(T)."""
    def __init__(self, vocab=64, d=32, n_layer=2, n_head=4, ctx=16):
        super().__init__()
        self.wte, self.wpe, self.drop = nn.Embedding(vocab, d), nn.Embedding(ctx, d), nn.Dropout(0.1)
        self.h = nn.ModuleList([GPT2Block(d, n_head, ctx) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        pos = torch.arange(idx.size(1), dtype=torch.long, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class EncoderClassifier(nn.Module):
    """nn.TransformerEncoder over nn.Embedding, mean-pooled over kept positions (attention_mask 1), 3 classes."""
    def __init__(self, vocab=50, d=32, n_head=4, ff=64, n_layer=2, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, n_head, ff, batch_first=True)
        # enable_nested_tensor=False, and every forward runs with grad enabled (parameters require grad): together
        # they keep torch 1.13 off its inference fast path (nested tensors / fused kernels), so PyTorch's oracle
        # and the export trace both run the ordinary path through the submodules
        self.encoder = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        for layer in self.encoder.layers:  # the layers are deep copies of one layer: give each its own weights
            layer.self_attn._reset_parameters()
            for linear in (layer.self_attn.out_proj, layer.linear1, layer.linear2):
                linear.reset_parameters()
        self.classifier = nn.Linear(d, classes)

    def forward(self, input_ids, attention_mask):
        x = self.encoder(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        keep = attention_mask.unsqueeze(-1).to(x.dtype)
        return self.classifier((x * keep).sum(1) / keep.sum(1))


class RNNClassifier(nn.Module):
    """Embedding, 2-layer bidirectional LSTM or GRU, Linear on the last time step's output."""
    def __init__(self, cell, vocab=40, d=16, hidden=16, classes=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.rnn = cell(d, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, input_ids):
        out, _ = self.rnn(self.embed(input_ids))
        return self.fc(out[:, -1, :])


class TokenClassifier(nn.Module):
    """Sequence classifier: Embedding, mean over positions, MLP, 5 classes."""
    def __init__(self, vocab=50, d=32, hidden=64, classes=5):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, input_ids):
        return self.mlp(self.embed(input_ids).mean(1))


class AudioConv1d(nn.Module):
    def __init__(self, classes=6):
        super().__init__()
        def block(c_in, c_out, pool):
            layers = [nn.Conv1d(c_in, c_out, 9, padding=4), nn.BatchNorm1d(c_out), nn.ReLU()]
            return nn.Sequential(*(layers + [nn.MaxPool1d(4)] if pool else layers))
        self.features = nn.Sequential(block(1, 8, True), block(8, 16, True), block(16, 32, False))
        self.pool, self.flatten, self.fc = nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.features(x))))


class UNet(nn.Module):
    """Two down levels, a bottleneck, up by ConvTranspose2d then by nearest Upsample, skips by torch.cat."""
    def __init__(self):
        super().__init__()
        conv = lambda c_in, c_out: nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())
        self.down1, self.pool1 = conv(3, 4), nn.MaxPool2d(2)
        self.down2, self.pool2 = conv(4, 8), nn.MaxPool2d(2)
        self.bottleneck = conv(8, 16)
        self.up1, self.dec1 = nn.ConvTranspose2d(16, 8, 2, stride=2), conv(8 + 8, 8)
        self.up2, self.dec2 = nn.Upsample(scale_factor=2, mode="nearest"), conv(8 + 4, 4)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        s1 = self.down1(x)
        s2 = self.down2(self.pool1(s1))
        b = self.bottleneck(self.pool2(s2))
        d1 = self.dec1(torch.cat([self.up1(b), s2], dim=1))
        d2 = self.dec2(torch.cat([self.up2(d1), s1], dim=1))
        return self.head(d2)


class NormsCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1, self.gn, self.relu1 = nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU()
        self.conv2, self.inorm, self.relu2 = nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.InstanceNorm2d(16, affine=True), nn.ReLU()
        self.pool, self.flatten, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes)

    def forward(self, x):
        x = self.relu2(self.inorm(self.conv2(self.relu1(self.gn(self.conv1(x))))))
        return self.fc(self.flatten(self.pool(x)))


class BareTransformer(nn.Module):
    """Grokking-style 1-layer transformer on (a, b, =) mod 23, bare nn.Parameters only (no submodules, no LayerNorm)."""
    def __init__(self, p=23, d=32, n_heads=4, d_head=8, d_mlp=64, n_ctx=3):
        super().__init__()
        P = lambda *shape, fan: nn.Parameter(torch.randn(*shape) / math.sqrt(fan))
        self.W_E, self.W_pos = P(p + 1, d, fan=d), P(n_ctx, d, fan=d)
        self.W_Q, self.W_K, self.W_V = (P(n_heads, d_head, d, fan=d) for _ in range(3))
        self.W_O = P(d, n_heads * d_head, fan=n_heads * d_head)
        self.W_in, self.W_out = P(d_mlp, d, fan=d), P(d, d_mlp, fan=d_mlp)
        self.W_U = P(d, p, fan=d)
        self.d_head = d_head
        self.register_buffer("mask", torch.tril(torch.ones(n_ctx, n_ctx)))

    def forward(self, tokens):
        x = self.W_E[tokens] + self.W_pos                                     # [b, pos, d]
        q, k, v = (torch.einsum("bpd,hed->bhpe", x, W) for W in (self.W_Q, self.W_K, self.W_V))
        scores = torch.einsum("bhpe,bhqe->bhpq", q, k) / math.sqrt(self.d_head)
        pattern = F.softmax(scores.masked_fill(self.mask == 0, float("-inf")), dim=-1)
        z = torch.einsum("bhpq,bhqe->bphe", pattern, v).flatten(2)
        x = x + torch.einsum("bpf,df->bpd", z, self.W_O)
        x = x + torch.einsum("bpm,dm->bpd", F.relu(torch.einsum("bpd,md->bpm", x, self.W_in)), self.W_out)
        return x[:, -1] @ self.W_U                                            # logits at the last position


def build_vit():
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64, num_classes=10)
    vit.heads.head.reset_parameters()  # torchvision zero-initialises the head and the class token: logits would be 0
    nn.init.normal_(vit.class_token, std=0.5)
    return vit


def build_mobilenet():
    net = mobilenet_v3_small(width_mult=0.25, num_classes=10)
    for m in net.modules():  # torchvision's N(0, 0.01) Linear init gives near-zero logits
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    return net


def build_efficientnet():
    setting, last_channel = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.5)
    return EfficientNet(setting, dropout=0.2, num_classes=10, last_channel=last_channel)


IMAGE = [("input", "image", (3, 32, 32))]
# name, builder, inputs (name, kind, shape), output, dynamic seq, conv dims (1 or 2: the unit axis of rank-3 or
# rank-4 values is channel axis 1), classifier, classes, description
MODELS = [
    ("resnet18", SmallResNet18, IMAGE, "logits", False, 2, True, 10, "torchvision ResNet-18 (BasicBlock [2,2,2,2]), widths / 8"),
    ("mobilenet_v3_small", build_mobilenet, IMAGE, "logits", False, 2, True, 10, "torchvision mobilenet_v3_small, width_mult 0.25"),
    ("efficientnet_b0", build_efficientnet, IMAGE, "logits", False, 2, True, 10, "torchvision EfficientNet-B0, width_mult 0.25, depth_mult 0.5"),
    ("vit", build_vit, IMAGE, "logits", False, 2, True, 10, "torchvision VisionTransformer, 32x32, patch 8, 2 layers, 4 heads, d 32"),
    ("gpt2", GPT2, [("input_ids", "tokens", (64, 10))], "logits", True, None, False, 64, "GPT-2-style decoder, vocab 64, d 32, 2 layers, 4 heads, context 16, tied lm_head"),
    ("encoder", EncoderClassifier, [("input_ids", "tokens", (50, 10)), ("attention_mask", "mask", (10,))], "logits", True, None, True, 3,
     "nn.TransformerEncoder (2 layers, d 32, 4 heads, batch_first) over nn.Embedding, mean over kept positions, 3 classes"),
    ("lstm", lambda: RNNClassifier(nn.LSTM), [("input_ids", "tokens", (40, 10))], "logits", True, None, True, 4, "Embedding, 2-layer bidirectional LSTM, Linear on the last step"),
    ("gru", lambda: RNNClassifier(nn.GRU), [("input_ids", "tokens", (40, 10))], "logits", True, None, True, 4, "Embedding, 2-layer bidirectional GRU, Linear on the last step"),
    ("token_classifier", TokenClassifier, [("input_ids", "tokens", (50, 10))], "logits", True, None, True, 5, "Embedding, mean over positions, MLP, 5 classes"),
    ("audio_conv1d", AudioConv1d, [("input", "audio", (1, 256))], "logits", False, 1, True, 6, "Conv1d/BatchNorm1d/ReLU/MaxPool1d x3, AdaptiveAvgPool1d, Linear, 6 classes"),
    ("unet", UNet, IMAGE, "output", False, 2, False, 2, "small U-Net: 2 down levels, ConvTranspose2d and nearest Upsample, skips by cat; 2 output channels per pixel"),
    ("norms", NormsCNN, IMAGE, "logits", False, 2, True, 10, "CNN with GroupNorm and InstanceNorm2d(affine), global pool, Linear"),
    ("bare_transformer", BareTransformer, [("input_ids", "modadd", (23, 3))], "logits", False, None, True, 23,
     "grokking-style 1-layer transformer of bare nn.Parameters on (a, b, =) mod 23: no submodules, so no hooks"),
]


def enliven(model):
    """Non-trivial normalisation statistics and affine parameters, so that folding and norms are visible, and no
    all-zero biases (torch 1.13 merges identical initializers, wiring the copies through Identity nodes)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") and not p.any():
                p.uniform_(-0.1, 0.1)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)) and m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.25, 0.25)


# ---------------------------------------------------------------------------------------------------- inputs
def sample_inputs(specs, g, lengths):
    """A batch of 4 examples per input spec; attention masks keep the first lengths[i] positions (pad id 0)."""
    out = {}
    for name, kind, shape in specs:
        if kind == "image":
            out[name] = torch.rand((BATCH,) + shape, generator=g)
        elif kind == "audio":
            out[name] = torch.randn((BATCH,) + shape, generator=g) * 0.5
        elif kind == "tokens":
            out[name] = torch.randint(0, shape[0], (BATCH, shape[1]), generator=g)
        elif kind == "modadd":
            ab = torch.randint(0, shape[0], (BATCH, 2), generator=g)
            out[name] = torch.cat([ab, torch.full((BATCH, 1), shape[0])], dim=1)
        elif kind == "mask":
            out[name] = (torch.arange(shape[0])[None, :] < torch.tensor(lengths)[:, None]).long()
            out["input_ids"] = out["input_ids"] * out[name]
    return out


# ---------------------------------------------------------------------------------------------------- hooks
def run(model, inputs, edit=None):
    """One forward pass with a forward hook on every named submodule. Returns (output, hooks), hooks a list in firing
    order of dicts hook, module, call, type, value (a copy taken when the call returns), tuple_index, passthrough.
    edit = (hook, fn) replaces that call's output (a tuple's first element) by fn(output); it must fire exactly once."""
    names = {m: n for n, m in model.named_modules() if n}
    calls, hooks, stash, fired = {}, [], {}, []

    def pre(m, args):
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        stash[m] = None if first is None else first.detach().clone()  # before any in-place op (ReLU(inplace=True))

    def post(m, args, out):
        name = names[m]
        k = calls.get(name, 0)
        calls[name] = k + 1
        hook = name if k == 0 else f"{name}_{k}"
        first = out[0] if isinstance(out, tuple) else out
        assert isinstance(first, torch.Tensor), f"{hook} returns {type(first)}"
        inp = stash.pop(m)
        hooks.append({"hook": hook, "module": name, "call": k, "type": type(m).__name__,
                      "value": first.detach().clone().numpy(), "tuple_index": 0 if isinstance(out, tuple) else None,
                      "passthrough": inp is not None and inp.shape == first.shape and inp.dtype == first.dtype
                      and torch.equal(inp, first.detach())})
        if edit is not None and edit[0] == hook:
            fired.append(hook)
            new = edit[1](first.detach().clone())
            return (new,) + tuple(out[1:]) if isinstance(out, tuple) else new

    handles = [h for m in names for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        out = model(*inputs.values())
    finally:
        for h in handles:
            h.remove()
    assert edit is None or fired == [edit[0]], f"edit of {edit[0]} fired {len(fired)} times"
    return out.detach().clone().numpy(), hooks


def unit_axis(shape, conv_dims):
    return 1 if conv_dims is not None and len(shape) == conv_dims + 2 else len(shape) - 1


def region(shape, axis, units, positions):
    idx = [slice(None)] * len(shape)
    if units is not None:
        idx[axis] = torch.tensor(units)
    if positions is not None:
        idx[1] = torch.tensor([p % shape[1] for p in positions])
    assert units is None or positions is None
    return tuple(idx)


def replacer(idx, source=None, factor=None):
    """fn(output) -> a fresh tensor: output with output[idx] set to source[idx] (0 when None) or scaled by factor."""
    def fn(t):
        if factor is not None:
            t[idx] = t[idx] * factor
        else:
            t[idx] = 0.0 if source is None else torch.tensor(source, dtype=t.dtype)[idx]
        return t
    return fn


def plan_interventions(hooks, batched, corrupted_hooks, conv_dims):
    """The intervention list: (entry for the manifest, fn for run(), patch value or None)."""
    plans = []
    targets = [i for i, h in enumerate(hooks) if batched[i] and h["value"].dtype == np.float32 and h["value"].ndim >= 2]
    for i in targets:
        shape = hooks[i]["value"].shape
        axis = unit_axis(shape, conv_dims)
        units = list(range(0, shape[axis], 2))
        plans.append(({"id": f"zero-{i}", "kind": "ablate", "method": "zero", "hook": hooks[i]["hook"], "units": units,
                       "unit_axis": axis}, replacer(region(shape, axis, units, None)), None))
    picked = [i for i in targets if not hooks[i]["passthrough"]]
    picked = sorted({picked[0], picked[len(picked) // 2], picked[-1]}) if picked else []
    for i in picked:
        h, clean = hooks[i], hooks[i]["value"]
        shape = clean.shape
        axis = unit_axis(shape, conv_dims)
        units = list(range(0, shape[axis], 2))
        idx = region(shape, axis, units, None)
        mean = np.broadcast_to(clean.mean(axis=0, keepdims=True), shape).copy()
        base = {"hook": h["hook"], "units": units, "unit_axis": axis}
        plans.append(({"id": f"mean-{i}", "kind": "ablate", "method": "mean", **base}, replacer(idx, mean), None))
        plans.append(({"id": f"resample-{i}", "kind": "ablate", "method": "resample", **base}, replacer(idx, clean[DONORS]), None))
        patch = corrupted_hooks[i]["value"]
        plans.append(({"id": f"patch-{i}", "kind": "patch", **base, "value": f"patch/patch-{i}.npy"}, replacer(idx, patch), patch))
        plans.append(({"id": f"scale-{i}", "kind": "scale", **base, "factor": SCALE}, replacer(idx, factor=SCALE), None))
        if len(shape) == 3 and conv_dims != 1:  # [batch, seq, d]
            plans.append(({"id": f"meanpos-{i}", "kind": "ablate", "method": "mean", "hook": h["hook"], "positions": [-1],
                           "unit_axis": axis}, replacer(region(shape, axis, None, [-1]), mean), None))
    return plans


# ---------------------------------------------------------------------------------------------------- export
def export(model, inputs, output, out_rank, seq_dynamic, folder, external):
    """Both opsets with torch's default flags; returns {opset: onnx stats} for the report."""
    dyn = {n: ({0: "batch", 1: "seq"} if seq_dynamic else {0: "batch"}) for n in inputs}
    dyn[output] = {0: "batch", 1: "seq"} if seq_dynamic and out_rank == 3 else {0: "batch"}  # gpt2's [batch, seq, vocab]
    stats = {}
    for opset in OPSETS:
        path = os.path.join(folder, f"opset{opset}.onnx")
        torch.onnx.export(model, tuple(inputs.values()), path, input_names=list(inputs), output_names=[output],
                          opset_version=opset, dynamic_axes=dyn)
        if opset in external:
            proto = onnx.load(path)
            onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=f"opset{opset}.onnx.data", size_threshold=1024)
        onnx.checker.check_model(path)
        proto = onnx.load(path)
        ops = [n.op_type for n in proto.graph.node]
        stats[opset] = {"nodes": len(ops), "ops": sorted(set(ops)), "names": [n.name for n in proto.graph.node],
                        "initializers": len(proto.graph.initializer)}
    return stats


def save(folder, rel, arr):
    path = os.path.join(folder, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert arr.dtype in (np.float32, np.int64), (rel, arr.dtype)
    np.save(path, arr)
    return {"file": rel, "dtype": str(arr.dtype), "shape": list(arr.shape)}


def make(index, name, build, in_specs, output, seq_dynamic, conv_dims, classifier, classes, description):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)  # onnx appends to an existing external-data file
    os.makedirs(folder)
    torch.manual_seed(1000 + index)
    model = build()
    enliven(model)
    model.eval()
    g = torch.Generator().manual_seed(2000 + index)
    inputs = sample_inputs(in_specs, g, [10, 7, 10, 4])
    corrupted = sample_inputs(in_specs, g, [5, 10, 8, 10])

    out, hooks = run(model, inputs)
    out_again, hooks_again = run(model, inputs)
    assert np.array_equal(out, out_again) and all(np.array_equal(a["value"], b["value"]) for a, b in zip(hooks, hooks_again))
    _, corrupted_hooks = run(model, corrupted)
    _, probe = run(model, {k: v[:3] for k, v in inputs.items()})  # which hooks carry the batch on axis 0
    assert [h["hook"] for h in hooks] == [h["hook"] for h in probe] == [h["hook"] for h in corrupted_hooks]
    batched = [a["value"].shape[0] == BATCH and b["value"].shape == (3,) + a["value"].shape[1:] for a, b in zip(hooks, probe)]
    for i, h in enumerate(hooks):  # identity edits must reproduce the clean output bit for bit
        assert np.array_equal(run(model, inputs, edit=(h["hook"], lambda t: t))[0], out), h["hook"]

    manifest = {"model": name, "description": description, "torch": torch.__version__, "classifier": classifier,
                "num_classes": classes, "files": {str(o): f"opset{o}.onnx" for o in OPSETS},
                "external_data": ["17"] if name == "resnet18" else [], "inputs": [], "outputs": [], "hooks": [],
                "donors": "donors.npy", "interventions": []}
    for n in inputs:
        entry = save(folder, f"inputs/{n}.npy", inputs[n].numpy())
        entry["corrupted"] = save(folder, f"corrupted/{n}.npy", corrupted[n].numpy())["file"]
        manifest["inputs"].append({"name": n, **entry})
    manifest["outputs"].append({"name": output, **save(folder, f"outputs/{output}.npy", out)})
    for h, b in zip(hooks, batched):
        entry = {"hook": h["hook"], "module": h["module"], "call": h["call"], "type": h["type"],
                 **save(folder, f"act/{h['hook']}.npy", h["value"])}
        entry.update({k: v for k, v in (("tuple_index", h["tuple_index"]), ("passthrough", h["passthrough"] or None),
                                        ("batched", False if not b else None)) if v is not None})
        manifest["hooks"].append(entry)
    save(folder, "donors.npy", DONORS)

    effects = 0
    for entry, fn, patch in plan_interventions(hooks, batched, corrupted_hooks, conv_dims):
        result, _ = run(model, inputs, edit=(entry["hook"], fn))
        effects += not np.array_equal(result, out)
        entry["outputs"] = {output: save(folder, f"interventions/{entry['id']}/{output}.npy", result)["file"]}
        if patch is not None:
            save(folder, entry["value"], patch)
        manifest["interventions"].append(entry)

    stats = export(model, inputs, output, out.ndim, seq_dynamic, folder, external=(17,) if name == "resnet18" else ())
    assert np.array_equal(run(model, inputs)[0], out)  # exporting left the model as it was
    manifest["gradients"] = record_gradients(model, inputs, out, folder)
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    report(name, out, manifest, effects, stats)


def record_gradients(model, inputs, out, folder):
    """PyTorch autograd oracle: mean cross-entropy of the output's last axis against (argmax + 1 + row) mod classes."""
    scores = torch.from_numpy(out)
    classes = scores.shape[-1]
    rows = scores.reshape(-1, classes)
    target = ((rows.argmax(-1) + 1 + torch.arange(rows.shape[0])) % classes).reshape(scores.shape[:-1])
    feeds = {n: (v.clone().requires_grad_(True) if v.dtype.is_floating_point else v) for n, v in inputs.items()}
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(*feeds.values()).reshape(-1, classes), target.reshape(-1))
    loss.backward()
    return {"loss": loss.item(), "target": save(folder, "grad/target.npy", target.numpy())["file"],
            "params": {n: save(folder, f"grad/param/{n}.npy", p.grad.numpy())["file"] for n, p in model.named_parameters() if p.grad is not None},
            "inputs": {n: save(folder, f"grad/input/{n}.npy", v.grad.numpy())["file"] for n, v in feeds.items() if v.grad is not None}}


def report(name, out, manifest, effects, stats):
    n_int = len(manifest["interventions"])
    passthrough = [h["hook"] for h in manifest["hooks"] if h.get("passthrough")]
    print(f"== {name}: output {list(out.shape)} max|.| {np.abs(out).max():.3g}; hooks {len(manifest['hooks'])} "
          f"(passthrough {len(passthrough)}: types {sorted({h['type'] for h in manifest['hooks'] if h.get('passthrough')})}); "
          f"interventions {n_int} ({n_int - effects} leave the output unchanged)")
    for opset, s in stats.items():
        flags = [op for op in ("Range", "Loop", "If", "Scan", "LSTM", "GRU", "LayerNormalization", "Einsum") if op in s["ops"]]
        print(f"   opset{opset}: {s['nodes']} nodes, {s['initializers']} initializers, notable ops {flags}")
        print(f"      ops: {' '.join(s['ops'])}")
    print(f"   first node names: {stats[17]['names'][:6]}")
    sys.stdout.flush()


if __name__ == "__main__":
    torch.set_num_threads(1)
    only = sys.argv[1:]
    for i, spec in enumerate(MODELS):
        if not only or spec[0] in only:
            make(i, *spec)
