"""PyTorch autograd oracles for Convs with a BatchNorm folded in (issue 12): the exporter's constant folding merges every
eval-mode BatchNorm into the Conv before it, so the ONNX model's parameters there are the fused Conv's weight and bias,
not conv.weight, bn.weight and bn.bias. This script rebuilds resnet18, mobilenet_v3_small, efficientnet_b0 and audio_conv1d
exactly as make.py does (its builders, seeds and enliven), checks the rebuilt outputs equal the committed outputs/*.npy, fuses
every Conv + BatchNorm pair with torch.nn.utils.fusion.fuse_conv_bn_eval, checks the fused model's outputs equal the
unfused ones, and records the gradient of make.py's loss (mean cross-entropy against grad/target.npy) with respect to
each fused Conv's weight and bias.

Run with Debian's python3-torch (1.13):  OMP_NUM_THREADS=1 /usr/bin/python3 test/corpus/make_fused_grads.py [MODEL ...]
(default: every model below; npm test never runs this; the files it writes are committed.)  For each model it writes <model>/grad/fused/:

  <conv>.weight.npy, <conv>.bias.npy   the fused Conv's gradients (PyTorch names of the fused module)
  index.json                           {"loss": the fused model's loss, "pairs": [{"conv", "batchnorm", "weight", "bias"}],
                                        "checks": what was verified before recording}

and leaves every other corpus file alone. A Conv is paired with the BatchNorm that directly follows it among its
parent's children (Conv2dNormActivation's [Conv2d, BatchNorm2d, activation], ResNet's conv1/bn1, downsample's 0/1);
the output checks fail if any such pair were not a Conv feeding that BatchNorm.
"""
import json, os, sys
import numpy as np
import onnx
from onnx import numpy_helper
import torch, torch.nn as nn, torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make  # noqa: E402  (the corpus builders; its __main__ guard keeps it from running)

FOLDED = ("resnet18", "mobilenet_v3_small", "efficientnet_b0", "audio_conv1d")


def rebuild(name):
    """make.make's model and inputs: same seeds, same draws in the same order."""
    index = [spec[0] for spec in make.MODELS].index(name)
    _, build, in_specs = make.MODELS[index][:3]
    torch.manual_seed(1000 + index)
    model = build()
    make.enliven(model)
    model.eval()
    g = torch.Generator().manual_seed(2000 + index)
    return model, make.sample_inputs(in_specs, g, [10, 7, 10, 4])


def check_weights(model, onnx_path):
    """Every parameter the export kept under its own name equals the rebuilt model's bit for bit; returns how many."""
    state = model.state_dict()
    kept = [t for t in onnx.load(onnx_path).graph.initializer if t.name in state]
    for tensor in kept:
        assert np.array_equal(numpy_helper.to_array(tensor), state[tensor.name].numpy()), f"rebuilt {tensor.name} differs from the export's"
    assert kept, "no parameter kept its name in the export"
    return len(kept)


def fuse_all(model):
    """Replaces, in place, every Conv1d/Conv2d followed by a BatchNorm of its rank as a sibling with their fusion (and the BatchNorm by an Identity)."""
    pairs = []
    for parent_name, parent in list(model.named_modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)) or (isinstance(conv, nn.Conv1d) and isinstance(bn, nn.BatchNorm1d)):
                prefix = f"{parent_name}." if parent_name else ""
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
                pairs.append((prefix + conv_name, prefix + bn_name))
    return pairs


def main(names):
    torch.set_num_threads(1)
    for name in names:
        assert name in FOLDED, f"{name} is not a corpus model with folded BatchNorms: {', '.join(FOLDED)}"
        folder = os.path.join(make.OUT, name)
        manifest = json.load(open(os.path.join(folder, "manifest.json")))
        model, inputs = rebuild(name)
        for spec in manifest["inputs"]:
            assert np.array_equal(inputs[spec["name"]].numpy(), np.load(os.path.join(folder, spec["file"]))), f"{name}: rebuilt input {spec['name']}"
        same_weights = check_weights(model, os.path.join(folder, manifest["files"]["14"]))
        out = model(*inputs.values()).detach().numpy()  # with grad enabled, as make.py runs every forward
        committed = np.load(os.path.join(folder, manifest["outputs"][0]["file"]))
        # Bit-equal weights and inputs; the output may differ in its last bits where the BLAS differs from make.py's run.
        rebuilt_error = np.abs(out - committed).max() / np.abs(committed).max()
        assert rebuilt_error <= 1e-6, f"{name}: rebuilt output differs from the committed one by {rebuilt_error:.2e} of its largest value"

        pairs = fuse_all(model)
        fused_out = model(*inputs.values()).detach().numpy()
        scale = np.abs(out).max()
        assert np.abs(fused_out - out).max() <= 1e-5 * scale, f"{name}: fused output off by {np.abs(fused_out - out).max()}"

        target = torch.from_numpy(np.load(os.path.join(folder, manifest["gradients"]["target"])))
        classes = fused_out.shape[-1]
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(*inputs.values()).reshape(-1, classes), target.reshape(-1))
        loss.backward()
        fused_dir = os.path.join(folder, "grad", "fused")
        os.makedirs(fused_dir, exist_ok=True)
        entries = []
        for conv, bn in pairs:
            module = model.get_submodule(conv)
            files = {}
            for role in ("weight", "bias"):
                rel = f"grad/fused/{conv}.{role}.npy"
                np.save(os.path.join(folder, rel), getattr(module, role).grad.numpy())
                files[role] = rel
            entries.append({"conv": conv, "batchnorm": bn, **files})
        with open(os.path.join(fused_dir, "index.json"), "w") as f:
            json.dump({"torch": torch.__version__, "loss": loss.item(), "pairs": entries,
                       "checks": {"named_parameters_bit_equal": same_weights, "rebuilt_output_relative_error": float(rebuilt_error),
                                  "fused_output_max_abs_difference": float(np.abs(fused_out - out).max())}}, f, indent=1)
        print(f"== {name}: rebuilt: {same_weights} named parameters bit-equal to the export's, output within {rebuilt_error:.1e} of the committed one; "
              f"{len(pairs)} Conv+BatchNorm pairs fused; max |fused - unfused| output {np.abs(fused_out - out).max():.2e} "
              f"(max |output| {scale:.3g}); loss {loss.item():.7f} (unfused oracle {manifest['gradients']['loss']:.7f})")


if __name__ == "__main__":
    main(sys.argv[1:] or FOLDED)
