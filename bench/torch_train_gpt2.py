"""PyTorch side of `npm run bench -- train-gpt2`: one training step (forward, cross-entropy over every position,
backward, AdamW update) of a GPT-2-small-shaped model (bench/torch_scale.py's: 12 layers, d_model 768, 12 heads,
vocab 50257, context 128) on a batch of 8 sequences of 128 tokens.

The lm_head is untied from wte here (its own N(0, 0.02) init) on both sides: the ONNX export stores a tied head as
a transposed copy of wte, which a step graph would train as a second parameter, so a tied step would not be the
same computation on the two sides.

  torch_train_gpt2.py export DIR               weights (DIR/weights.pt), the ONNX export (DIR/model.onnx, opset 14,
                                               torch 1.13's default) and the batch (DIR/tokens.npy, DIR/targets.npy)
  torch_train_gpt2.py train DIR STEPS THREADS  one warm-up step, then STEPS timed steps; prints one JSON line: each
                                               timed step's ms, every step's loss (warm-up first), CPU time / wall
                                               time over the timed steps, peak RSS
  torch_train_gpt2.py profile DIR THREADS      one step after a warm-up under torch.profiler: its parts' wall times and
                                               the op types with the most self CPU time (not timed by the bench)

Run by bench/train-gpt2.ts with the OpenBLAS kernel bench/run.ts's peerBlas chose.

For iterating on a smaller shape, `export` reads TEARDOWN_GPT2_LAYERS and TEARDOWN_GPT2_VOCAB (default 12 and
50257) and writes the shape to DIR/shape.json, which `train` and `profile` read back: every command on DIR
builds the same model.
"""
import json, os, resource, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_scale  # noqa: E402
from torch_scale import CTX, D, GPT2Small  # noqa: E402

BATCH = 8
LR, BETAS, EPS, WEIGHT_DECAY = 1e-4, (0.9, 0.999), 1e-8, 0.01


def use_shape(folder, write=False):
    """Sets torch_scale's layer count and vocabulary (read by GPT2Small when it is built) to DIR's shape."""
    path = os.path.join(folder, "shape.json")
    if write:
        shape = {"layers": int(os.environ.get("TEARDOWN_GPT2_LAYERS", 12)), "vocab": int(os.environ.get("TEARDOWN_GPT2_VOCAB", 50257))}
        with open(path, "w") as file:
            json.dump(shape, file)
    else:
        with open(path) as file:
            shape = json.load(file)
    torch_scale.LAYERS, torch_scale.VOCAB = shape["layers"], shape["vocab"]


def untied():
    model = GPT2Small()
    model.lm_head.weight = nn.Parameter(torch.empty(torch_scale.VOCAB, D).normal_(std=0.02))
    return model


def export(folder):
    use_shape(folder, write=True)
    torch.manual_seed(0)
    model = untied().eval()
    torch.save(model.state_dict(), os.path.join(folder, "weights.pt"))
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, torch_scale.VOCAB, (BATCH, CTX), generator=g)
    np.save(os.path.join(folder, "tokens.npy"), tokens.numpy())
    np.save(os.path.join(folder, "targets.npy"), torch.randint(0, torch_scale.VOCAB, (BATCH, CTX), generator=g).numpy())
    torch.onnx.export(model, (tokens[:2],), os.path.join(folder, "model.onnx"), input_names=["input_ids"], output_names=["logits"],
                      opset_version=14, dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}})


def train(folder, steps, threads):
    use_shape(folder)
    torch.set_num_threads(threads)
    model = untied()
    model.load_state_dict(torch.load(os.path.join(folder, "weights.pt")))
    model.train()  # no dropout or batch statistics in this model: the same function as the eval-mode export
    tokens, targets = (torch.from_numpy(np.load(os.path.join(folder, f"{name}.npy"))) for name in ("tokens", "targets"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)

    def step():
        loss = F.cross_entropy(model(tokens).reshape(-1, torch_scale.VOCAB), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    losses, times = [step()], []
    cpu_start = time.process_time()
    for _ in range(steps):
        start = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - start)
    print(json.dumps({"times_ms": [1000 * t for t in times], "losses": losses, "cpu_per_wall": (time.process_time() - cpu_start) / sum(times),
                      "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


def profile(folder, threads):
    """One step after a warm-up under torch.profiler: wall time of its parts (forward, loss, backward, AdamW step) and
    the self CPU time of the largest op types, as bench/train-gpt2-profile.ts reports teardown's."""
    from torch.profiler import ProfilerActivity, profile as profiler, record_function
    use_shape(folder)
    torch.set_num_threads(threads)
    model = untied()
    model.load_state_dict(torch.load(os.path.join(folder, "weights.pt")))
    model.train()
    tokens, targets = (torch.from_numpy(np.load(os.path.join(folder, f"{name}.npy"))) for name in ("tokens", "targets"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)
    parts = {}

    def step(timed):
        def part(name, body):
            start = time.perf_counter()
            with record_function(name):
                result = body()
            if timed:
                parts[name] = round(1000 * (time.perf_counter() - start), 1)
            return result
        logits = part("forward", lambda: model(tokens))
        loss = part("loss", lambda: F.cross_entropy(logits.reshape(-1, torch_scale.VOCAB), targets.reshape(-1)))
        optimizer.zero_grad()
        part("backward", loss.backward)
        part("optimizer", optimizer.step)

    step(False)
    with profiler(activities=[ProfilerActivity.CPU]) as prof:
        step(True)
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]
    print(json.dumps({"threads": threads, "parts_ms": parts, "step_ms": round(sum(parts.values()), 1),
                      "top_ops_self_ms": [{"op": e.key, "ms": round(e.self_cpu_time_total / 1000, 1), "calls": e.count} for e in ops]}))


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(sys.argv[2])
    elif sys.argv[1] == "profile":
        profile(sys.argv[2], int(sys.argv[3]))
    else:
        train(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
