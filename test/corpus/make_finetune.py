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

Models with a BatchNorm folded into a Conv at export (resnet18, mobilenet_v3_small, efficientnet_b0, audio_conv1d)
are left out: their exported graphs hold the folded product, not PyTorch's Conv and BatchNorm parameters.
"""
import json, os, shutil, sys
import numpy as np
import torch, torch.nn.functional as F

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
    assert error < 1e-6, f"rebuilt output differs from the corpus by {error:.2e}"
    return error


def finetune(name):
    folder = os.path.join(make.OUT, name)
    lr, momentum, saved = SETTINGS[name]
    model, inputs, output = rebuild(name)
    error = check_rebuilt(folder, model, inputs, output)
    target = torch.from_numpy(np.load(os.path.join(folder, "grad", "target.npy")))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        scores = model(*inputs.values())
        loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), target.reshape(-1))
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
    out = os.path.join(folder, "finetune")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "param"))
    parameters = dict(model.named_parameters())
    files = {}
    for parameter in saved:
        files[parameter] = f"finetune/param/{parameter}.npy"
        np.save(os.path.join(folder, files[parameter]), parameters[parameter].detach().numpy().astype(np.float32))
    with open(os.path.join(out, "finetune.json"), "w") as f:
        json.dump({"optimizer": "sgd", "lr": lr, "momentum": momentum, "steps": STEPS, "mode": "eval", "target": "grad/target.npy",
                   "losses": losses, "params": files}, f, indent=1)
    print(f"== {name}: rebuilt output vs corpus {error:.1e}; loss {losses[0]:.4f} -> {losses[-1]:.4f}; saved {', '.join(saved)}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in sys.argv[1:] or SETTINGS:
        finetune(name)
