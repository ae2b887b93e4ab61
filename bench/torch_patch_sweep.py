"""PyTorch side of `npm run bench -- patch`: the resid-stream patch sweep as a forward-hook loop,
one forward per (block, position), the way TransformerLens's get_act_patch_resid_pre does it.

Reads the gpt fixture's weights (dumped by bench/run.ts as <parameter name>.npy) and the clean and
corrupted token batches, prints one JSON line with the effect table, then serves timing blocks
(see main). Run by bench/run.ts with Debian's python3-torch and the OpenBLAS kernel peerBlas chose.
"""
import argparse, json, os, sys, time
import numpy as np
import torch, torch.nn as nn


class Attention(nn.Module):  # the architecture of the gpt fixture (TinyGPT, PyTorch 1.13 export)
    def __init__(self, d, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        q, k, v = (t.reshape(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / (D // self.n_heads) ** 0.5
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        pattern = self.softmax(scores.masked_fill(mask, float("-inf")))
        return self.proj((pattern @ v).transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, d, n_heads):
        super().__init__()
        self.ln1, self.attn, self.ln2 = nn.LayerNorm(d), Attention(d, n_heads), nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab=48, d=32, n_heads=4, n_layers=2, ctx=12):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(ctx, d))
        self.blocks = nn.Sequential(*[Block(d, n_heads) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d)
        self.unembed = nn.Linear(d, vocab)

    def forward(self, idx):
        x = self.embed(idx) + self.pos[: idx.shape[1]]
        return self.unembed(self.ln_f(self.blocks(x)))


def metric(logits, token):
    return logits[:, -1, token].mean().item()


def sweep(model, clean, corrupted, token):
    """One forward per (block, position): a forward pre-hook swaps that block's input (resid_pre) at one position."""
    cache = {}
    hooks = [block.register_forward_pre_hook(lambda m, args, i=i: cache.__setitem__(i, args[0].detach())) for i, block in enumerate(model.blocks)]
    model(corrupted)
    for h in hooks:
        h.remove()
    effects = []
    for i, block in enumerate(model.blocks):
        row = []
        for position in range(clean.shape[1]):
            def patch(module, args, position=position, i=i):
                resid = args[0].clone()
                resid[:, position] = cache[i][:, position]
                return (resid,)
            handle = block.register_forward_pre_hook(patch)
            row.append(metric(model(clean), token))
            handle.remove()
        effects.append(row)
    return effects


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights"); parser.add_argument("--clean"); parser.add_argument("--corrupted")
    parser.add_argument("--threads", type=int); parser.add_argument("--token", type=int)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = TinyGPT().eval()
    state = {name: torch.from_numpy(np.load(os.path.join(args.weights, f"{name}.npy"))) for name in model.state_dict()}
    model.load_state_dict(state)
    clean = torch.from_numpy(np.load(args.clean)); corrupted = torch.from_numpy(np.load(args.corrupted))
    with torch.no_grad():
        logits = model(clean).numpy()
        effects = sweep(model, clean, corrupted, args.token)  # also the warm-up
        np.save(os.path.join(args.weights, "torch_logits.npy"), logits)
        print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "effects": effects}), flush=True)
        # Then timing blocks: a sweep count per line in, each sweep's milliseconds and CPU time ÷ wall time out.
        for line in sys.stdin:
            times = []
            cpu_start = time.process_time()
            for _ in range(int(line)):
                start = time.perf_counter()
                sweep(model, clean, corrupted, args.token)
                times.append(time.perf_counter() - start)
            print(json.dumps({"times_ms": [1000 * t for t in times], "cpu_per_wall": (time.process_time() - cpu_start) / sum(times)}), flush=True)

main()
