"""PyTorch side of `npm run bench -- scale`: a GPT-2-small-shaped model (12 layers, d_model 768, 12 heads,
vocab 50257, context 128, random init, lm_head tied to wte, nanoGPT layout with the attention softmax as a
module so that its pattern is a module hook on both sides).

  torch_scale.py export DIR            weights (DIR/weights.pt) and the ONNX export (DIR/model.onnx, opset 14)
  torch_scale.py cache DIR REPS ...    every module hook copied to numpy by forward hooks, batches of 8
  torch_scale.py patch DIR REPS ...    resid_pre patch sweep, one forward per (block, position), TransformerLens-style
  torch_scale.py inspect DIR REPS ...  census (mean, std per unit) and mean-ablation importance per unit of three hooks

Each timed case prints one JSON line: times in ms per repetition, the process's peak RSS (getrusage) and
what the comparison needs. Run by bench/run.ts (benchScale) with the OpenBLAS kernel peerBlas chose.
"""
import json, math, os, resource, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

VOCAB, D, LAYERS, HEADS, CTX = 50257, 768, 12, 12, 128


class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn, self.c_proj, self.softmax = nn.Linear(D, 3 * D), nn.Linear(D, D), nn.Softmax(dim=-1)
        self.register_buffer("bias", torch.tril(torch.ones(CTX, CTX)).view(1, 1, CTX, CTX))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, HEADS, C // HEADS).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // HEADS))  # (B, nh, T, T)
        att = self.softmax(att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf")))
        return self.c_proj((att @ v).transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc, self.gelu, self.c_proj = nn.Linear(D, 4 * D), nn.GELU(), nn.Linear(4 * D, D)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp = nn.LayerNorm(D), CausalSelfAttention(), nn.LayerNorm(D), MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, D), nn.Embedding(CTX, D)
        self.h = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.ln_f = nn.LayerNorm(D)
        self.lm_head = nn.Linear(D, VOCAB, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():  # GPT-2's init: N(0, 0.02), residual projections scaled by 1/sqrt(2·layers)
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * LAYERS) if name.endswith("c_proj.weight") else 0.02)

    def forward(self, idx):
        pos = torch.arange(idx.size(1), dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def load(folder):
    model = GPT2Small().eval()
    model.load_state_dict(torch.load(os.path.join(folder, "weights.pt")))
    return model


def peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def batches(tokens, size):
    return [tokens[start:start + size] for start in range(0, len(tokens), size)]


def run_with_cache(model, tokens, names):
    """Every named module's output copied to numpy, batch by batch; a batch's cache is dropped before the next (streaming)."""
    cached_bytes = 0
    for batch in batches(tokens, 8):
        cache = {}
        handles = [model.get_submodule(name).register_forward_hook(lambda m, i, out, name=name: cache.__setitem__(name, out.detach().numpy().copy())) for name in names]
        logits = model(batch)
        for handle in handles:
            handle.remove()
        cached_bytes = sum(value.nbytes for value in cache.values())
    return cached_bytes, cache, logits


def patch_sweep(model, clean, corrupted, positions, token):
    """One forward per (block, position): a forward pre-hook swaps the block's input (resid_pre) at one position."""
    cache = {}
    hooks = [block.register_forward_pre_hook(lambda m, args, i=i: cache.__setitem__(i, args[0].detach())) for i, block in enumerate(model.h)]
    model(corrupted)
    for handle in hooks:
        handle.remove()
    effects = []
    for i, block in enumerate(model.h):
        row = []
        for position in positions:
            def patch(module, args, position=position, i=i):
                resid = args[0].clone()
                resid[:, position] = cache[i][:, position]
                return (resid,)
            handle = block.register_forward_pre_hook(patch)
            row.append(model(clean)[:, -1, token].mean().item())
            handle.remove()
        effects.append(row)
    return effects


def inspect(model, tokens, names, batch_size):
    """teardown inspect's census and importance, plainly: pass 1 sums each hook (units = axis 1, heads for an
    attention pattern) for mean/std per unit and its mean over examples per position; pass 2 mean-ablates each
    unit (and the whole hook) and scores each example by the output's mean squared change (output-change)."""
    modules = [model.get_submodule(name) for name in names]
    sums = [None] * len(names)
    census = [[0.0, 0.0, 0] for _ in names]  # per hook: per-unit sum, sum of squares, count per unit
    def observe(h):
        def hook(module, args, out):
            sums[h] = out.sum(0, keepdim=True) if sums[h] is None else sums[h] + out.sum(0, keepdim=True)
            per_unit = out.transpose(0, 1).reshape(out.shape[1], -1).double()  # (units, everything else)
            census[h][0] = census[h][0] + per_unit.sum(1); census[h][1] = census[h][1] + (per_unit ** 2).sum(1); census[h][2] += per_unit.shape[1]
        return hook
    handles = [m.register_forward_hook(observe(h)) for h, m in enumerate(modules)]
    for batch in batches(tokens, batch_size):
        model(batch)
    for handle in handles:
        handle.remove()
    means = [s / len(tokens) for s in sums]  # (1, units, ...)
    stats = [((s / n).numpy(), ((q / n - (s / n) ** 2).clamp(min=0) ** 0.5).numpy()) for s, q, n in census]
    importance = [np.zeros(means[h].shape[1]) for h in range(len(names))]
    whole = np.zeros(len(names))
    for batch in batches(tokens, batch_size):
        clean = model(batch)
        for h, module in enumerate(modules):
            for unit in [*range(means[h].shape[1]), None]:
                def ablate(m, args, out, h=h, unit=unit):
                    out = out.clone()
                    if unit is None:
                        out[:] = means[h]
                    else:
                        out[:, unit] = means[h][:, unit]
                    return out
                handle = module.register_forward_hook(ablate)
                change = ((model(batch) - clean) ** 2).flatten(1).mean(1).sum().item()
                handle.remove()
                if unit is None:
                    whole[h] += change / len(tokens)
                else:
                    importance[h][unit] += change / len(tokens)
    return {"census_mean": [s[0].tolist() for s in stats], "census_std": [s[1].tolist() for s in stats], "importance": [i.tolist() for i in importance], "whole_hook": whole.tolist()}


def export(folder):
    torch.manual_seed(0)
    model = GPT2Small().eval()
    torch.save(model.state_dict(), os.path.join(folder, "weights.pt"))
    idx = torch.randint(0, VOCAB, (2, CTX))
    torch.onnx.export(model, (idx,), os.path.join(folder, "model.onnx"), input_names=["input_ids"], output_names=["logits"],
                      opset_version=14, dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}})


def main():
    case, folder = sys.argv[1], sys.argv[2]
    if case == "export":
        return export(folder)
    reps, threads = int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    model = load(folder)
    result, times, cpu_times = {}, [], []  # cpu: process time of each timed run (wall time includes waiting for a core)
    with torch.no_grad():
        for rep in range(1 if reps == 0 else reps + 1):  # the first is the warm-up; REPS 0: one run, timed cold
            start, cpu_start = time.perf_counter(), time.process_time()
            if case == "cache":
                names = json.load(open(os.path.join(folder, "module_hooks.json")))
                tokens = torch.from_numpy(np.load(os.path.join(folder, "cache_tokens.npy")))
                cached_bytes, last_cache, logits = run_with_cache(model, tokens, names)
                result = {"hooks": len(names), "cached_mb_per_batch": round(cached_bytes / 1e6, 1)}
                if rep == 0:  # the last batch's values, for the comparison
                    for name in json.load(open(os.path.join(folder, "compare_hooks.json"))):
                        np.save(os.path.join(folder, f"torch_cache_{name}.npy"), last_cache[name])
            elif case == "patch":
                clean, corrupted = (torch.from_numpy(np.load(os.path.join(folder, f"{which}.npy"))) for which in ("clean", "corrupted"))
                spec = json.load(open(os.path.join(folder, "patch.json")))
                result = {"effects": patch_sweep(model, clean, corrupted, spec["positions"], spec["token"])}
            elif case == "inspect":
                spec = json.load(open(os.path.join(folder, "inspect.json")))
                tokens = torch.from_numpy(np.load(os.path.join(folder, "inspect_tokens.npy")))
                result = inspect(model, tokens, spec["hooks"], spec["batch_size"])
            if rep > 0 or reps == 0:
                times.append(1000 * (time.perf_counter() - start))
                cpu_times.append(1000 * (time.process_time() - cpu_start))
    print(json.dumps({"times_ms": times, "cpu_ms": cpu_times, "max_rss_mb": peak_rss_mb(), "torch": torch.__version__, **result}))


if __name__ == "__main__":  # bench/torch_train_gpt2.py imports the model
    main()
