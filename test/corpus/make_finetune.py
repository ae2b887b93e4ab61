"""Fine-tuning oracle: PyTorch doing 20 full-batch SGD steps on corpus models, in eval() mode.

Run by hand with Debian's python3-torch (1.13):  OMP_NUM_THREADS=1 /usr/bin/python3 test/corpus/make_finetune.py [model ...]
(npm test never runs this; the files it writes are committed.)  It rebuilds each model exactly as make.py does (its
builders, seeds and enliven()), checks that the rebuilt model's inputs and outputs equal the committed inputs/ and
outputs/ (so the ONNX exports hold these very weights), then trains in eval() mode — what the exported graph computes:
Dropout off, no BatchNorm batch statistics — with torch.optim.SGD(lr, momentum) on the mean cross-entropy of the
output's last axis against grad/target.npy (make.py's gradient target), the same corpus inputs every step.

Writes <model>/finetune/:
  finetune.json        lr, momentum, steps, the target file, losses (PyTorch's loss at each step, before its update)
                       and the saved parameters
  param/<name>.npy     the final value of a few parameters (PyTorch's names; float32)

Models with a BatchNorm folded into a Conv at export (audio_conv1d, resnet18, mobilenet_v3_small) hold the fused
Conv (torch.nn.utils.fusion.fuse_conv_bn_eval: W' = W·γ/σ, b' = (b − μ)·γ/σ + β), not PyTorch's Conv and BatchNorm
parameters. For them the oracle is PyTorch training the fused model (torch.fx.experimental.optimization.fuse, checked
against the committed outputs first): finetune.json has "fused": true, every fused parameter's name, the fused
model's losses, and "losses_unfused", PyTorch's curve training Conv and BatchNorm apart in eval() mode, which differs.
audio_conv1d is also exported with do_constant_folding=False and training=TrainingMode.PRESERVE from eval()
(finetune/unfolded.onnx, opset 17: BatchNormalization kept, in inference mode; the default flags fold it even without
constant folding), whose oracle (finetune/unfolded.json) is that unfused eval()-mode curve and its final parameters.
"""
import copy, json, os, shutil, sys
import numpy as np
import torch, torch.nn.functional as F
from torch.fx.experimental.optimization import fuse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make  # noqa: E402  (the corpus builders, seeds and enliven())

STEPS = 20
# model: (lr, momentum, parameters whose final value is saved) — learning rates that move the loss well within 20
# steps without driving it to 0 (a loss near 0 would make the per-step relative comparison measure rounding)
SETTINGS = {
    "gpt2": (0.03, 0.9, ["wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.1.ln_2.weight"]),
    "encoder": (0.01, 0.9, ["embed.weight", "encoder.layers.0.self_attn.in_proj_weight", "encoder.layers.1.norm2.bias", "classifier.weight"]),
    "token_classifier": (0.03, 0.9, ["embed.weight", "mlp.0.weight", "mlp.2.bias"]),
    "norms": (0.03, 0.9, ["conv1.weight", "gn.weight", "inorm.bias", "fc.weight"]),
    "vit": (0.01, 0.9, ["class_token", "encoder.pos_embedding", "conv_proj.weight", "encoder.layers.encoder_layer_0.self_attention.in_proj_weight", "heads.head.weight"]),
    "unet": (0.3, 0.9, ["down1.0.weight", "up1.weight", "head.bias"]),
    "bare_transformer": (0.01, 0.9, ["W_E", "W_Q", "W_U"]),
    "lstm": (0.3, 0.9, ["embed.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0_reverse", "rnn.bias_hh_l1", "fc.weight"]),
    "gru": (0.03, 0.9, ["embed.weight", "rnn.weight_ih_l0_reverse", "rnn.weight_hh_l1", "rnn.bias_ih_l1_reverse", "fc.weight"]),
}
# AdamW (lr, weight decay; betas 0.9, 0.999, eps 1e-8) on models whose every parameter has a sizeable gradient: Adam
# divides by √v, so a parameter whose true gradient is 0 (a key bias before a softmax) would step on rounding noise
ADAMW = {"token_classifier": (3e-3, 0.01), "bare_transformer": (3e-3, 0.01)}

# folded models: (lr, momentum, fused parameters saved, unfused parameters saved for the unfolded export or None)
FOLDED = {
    "audio_conv1d": (0.03, 0.9, ["features.0.0.weight", "features.1.0.bias", "fc.weight"], ["features.0.0.weight", "features.0.1.weight", "features.2.1.bias", "fc.weight"]),
    "resnet18": (0.003, 0.9, ["conv1.weight", "conv1.bias", "layer2.0.downsample.0.weight", "layer4.1.conv2.bias", "fc.weight"], None),
    "mobilenet_v3_small": (0.03, 0.9, ["features.0.0.weight", "features.1.block.1.fc1.weight", "features.12.0.bias", "classifier.3.weight"], None),
}


def rebuild(name):
    """The model, its inputs and its output name exactly as make.make() builds them (same seeds, same order)."""
    index = [spec[0] for spec in make.MODELS].index(name)
    _, build, in_specs, output, *_ = make.MODELS[index]
    torch.manual_seed(1000 + index)
    model = build()
    make.enliven(model)
    model.eval()
    g = torch.Generator().manual_seed(2000 + index)
    inputs = make.sample_inputs(in_specs, g, [10, 7, 10, 4])
    return model, inputs, output


def check_rebuilt(folder, model, inputs, output):
    for n, v in inputs.items():
        assert np.array_equal(np.load(os.path.join(folder, "inputs", f"{n}.npy")), v.numpy()), f"input {n} differs from the corpus"
    committed = np.load(os.path.join(folder, "outputs", f"{output}.npy"))
    out = model(*inputs.values()).detach().numpy()
    error = np.abs(out - committed).max() / np.abs(committed).max()
    assert error < 2e-6, f"rebuilt output differs from the corpus by {error:.2e}"
    return error


def sgd_steps(model, inputs, target, lr, momentum, optimizer=None):
    """STEPS full-batch SGD (or the given optimizer's) steps on the mean cross-entropy; PyTorch's loss at each step, before its update."""
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        scores = model(*inputs.values())
        loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), target.reshape(-1))
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
    return losses


def save_parameters(folder, model, names, prefix):
    parameters = dict(model.named_parameters())
    files = {}
    for name in names:
        files[name] = f"finetune/{prefix}/{name}.npy"
        os.makedirs(os.path.dirname(os.path.join(folder, files[name])), exist_ok=True)
        np.save(os.path.join(folder, files[name]), parameters[name].detach().numpy().astype(np.float32))
    return files


def write(folder, file, content):
    with open(os.path.join(folder, "finetune", file), "w") as f:
        json.dump(content, f, indent=1)


def finetune(name):
    folder = os.path.join(make.OUT, name)
    lr, momentum, saved = SETTINGS[name]
    model, inputs, output = rebuild(name)
    error = check_rebuilt(folder, model, inputs, output)
    target = torch.from_numpy(np.load(os.path.join(folder, "grad", "target.npy")))
    losses = sgd_steps(model, inputs, target, lr, momentum)
    shutil.rmtree(os.path.join(folder, "finetune"), ignore_errors=True)
    files = save_parameters(folder, model, saved, "param")
    write(folder, "finetune.json", {"optimizer": "sgd", "lr": lr, "momentum": momentum, "steps": STEPS, "mode": "eval",
                                    "target": "grad/target.npy", "losses": losses, "params": files})
    print(f"== {name}: rebuilt output vs corpus {error:.1e}; loss {losses[0]:.4f} -> {losses[-1]:.4f}; saved {', '.join(saved)}")
    if name in ADAMW:
        lr, weight_decay = ADAMW[name]
        model, inputs, output = rebuild(name)
        adamw = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
        losses = sgd_steps(model, inputs, target, lr, 0, adamw)
        write(folder, "adamw.json", {"optimizer": "adamw", "lr": lr, "weight_decay": weight_decay, "betas": [0.9, 0.999], "eps": 1e-8, "steps": STEPS,
                                     "mode": "eval", "target": "grad/target.npy", "losses": losses, "params": save_parameters(folder, model, saved, "adamw")})
        print(f"   AdamW: loss {losses[0]:.4f} -> {losses[-1]:.4f}")


def finetune_folded(name):
    folder = os.path.join(make.OUT, name)
    lr, momentum, saved, unfolded_saved = FOLDED[name]
    model, inputs, output = rebuild(name)
    error = check_rebuilt(folder, model, inputs, output)
    fused = fuse(copy.deepcopy(model))
    fused_error = check_rebuilt(folder, fused, inputs, output)
    target = torch.from_numpy(np.load(os.path.join(folder, "grad", "target.npy")))
    unfused = copy.deepcopy(model)
    if unfolded_saved:  # exported before training: the unfolded graph holds the starting weights
        os.makedirs(os.path.join(folder, "finetune"), exist_ok=True)
        torch.onnx.export(unfused, tuple(inputs.values()), os.path.join(folder, "finetune", "unfolded.onnx"), input_names=list(inputs),
                          output_names=[output], opset_version=17, do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE,
                          dynamic_axes={n: {0: "batch"} for n in [*inputs, output]})
    losses_unfused = sgd_steps(unfused, inputs, target, lr, momentum)
    losses = sgd_steps(fused, inputs, target, lr, momentum)
    for stale in ("finetune.json", "unfolded.json", "param", "unfused"):
        path = os.path.join(folder, "finetune", stale)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.path.exists(path) and os.remove(path)
    files = save_parameters(folder, fused, saved, "param")
    write(folder, "finetune.json", {"optimizer": "sgd", "lr": lr, "momentum": momentum, "steps": STEPS, "mode": "eval", "fused": True,
                                    "target": "grad/target.npy", "losses": losses, "losses_unfused": losses_unfused,
                                    "parameters": [n for n, _ in fused.named_parameters()], "params": files})
    if unfolded_saved:
        write(folder, "unfolded.json", {"optimizer": "sgd", "lr": lr, "momentum": momentum, "steps": STEPS, "mode": "eval", "model": "finetune/unfolded.onnx",
                                        "target": "grad/target.npy", "losses": losses_unfused,
                                        "params": save_parameters(folder, unfused, unfolded_saved, "unfused")})
    gap = max(abs(a - b) / abs(b) for a, b in zip(losses, losses_unfused))
    print(f"== {name} (folded): rebuilt {error:.1e}, fused {fused_error:.1e}; fused loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
          f"unfused {losses_unfused[-1]:.4f} (largest relative gap {gap:.1e})")


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in sys.argv[1:] or [*SETTINGS, *FOLDED]:
        finetune_folded(name) if name in FOLDED else finetune(name)
