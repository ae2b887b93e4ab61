"""More opsets of a few corpus models: the same PyTorch models as make.py, exported at opsets 13, 15 and 16.

Run with Debian's python3-torch (1.13):  OMP_NUM_THREADS=1 /usr/bin/python3 test/corpus/make_opsets.py [MODEL...]
(npm test never runs this; the files it writes are committed.)  For each model of OPSET_MODELS it rebuilds the model
exactly as make.py does (its builders, seeds and enliven) and checks it is the same model before writing anything:
its export at opset 17 must equal the committed opset17.onnx byte for byte (ONNX files do not depend on the BLAS),
the committed inputs must be what the rebuilt sampler draws, and its outputs must equal outputs/<output>.npy to
float32 rounding (1e-6 of the largest; the float oracles move by rounding with the BLAS, see README.md). Then it
writes <model>/opset13.onnx, opset15.onnx and opset16.onnx with make.py's export flags (eval mode,
constant folding, the same dynamic axes). It never rewrites make.py's files. test/gradient-opsets-13-16.test.ts
checks that gradients at these opsets equal those at opset 17.

Models are chosen for their ops within the corpus's 25 MB budget: gpt2 (causal attention, LayerNorm, tied
embedding), vit (Conv patches, MultiheadAttention, Gelu), unet (ConvTranspose, nearest Resize, Concat skips),
norms (GroupNorm, InstanceNorm), audio_conv1d (Conv1d, BatchNorm1d, MaxPool1d), token_classifier (Embedding, mean),
lstm (a 2-layer bidirectional LSTM, whose `layout` attribute appeared at opset 14).
"""
import os, sys, tempfile
import numpy as np
import torch
from make import MODELS, OUT, enliven, run, sample_inputs
import onnx

OPSET_MODELS = ["gpt2", "vit", "unet", "norms", "audio_conv1d", "token_classifier", "lstm"]
NEW_OPSETS = (13, 15, 16)


def rebuild(index, build, in_specs):
    """make.py make(): the same seeds, builder, enliven and eval mode, and the same clean inputs."""
    torch.manual_seed(1000 + index)
    model = build()
    enliven(model)
    model.eval()
    g = torch.Generator().manual_seed(2000 + index)
    return model, sample_inputs(in_specs, g, [10, 7, 10, 4])


def export_at(model, inputs, output, out_rank, seq_dynamic, path, opset):
    """make.py export() at one opset: torch's default flags, the same dynamic axes."""
    dyn = {n: ({0: "batch", 1: "seq"} if seq_dynamic else {0: "batch"}) for n in inputs}
    dyn[output] = {0: "batch", 1: "seq"} if seq_dynamic and out_rank == 3 else {0: "batch"}
    torch.onnx.export(model, tuple(inputs.values()), path, input_names=list(inputs), output_names=[output],
                      opset_version=opset, dynamic_axes=dyn)
    onnx.checker.check_model(path)
    return sorted({n.op_type for n in onnx.load(path).graph.node})


def main(only):
    torch.set_num_threads(1)
    for index, (name, build, in_specs, output, seq_dynamic, *_rest) in enumerate(MODELS):
        if name not in OPSET_MODELS or (only and name not in only):
            continue
        folder = os.path.join(OUT, name)
        model, inputs = rebuild(index, build, in_specs)
        for n, value in inputs.items():  # the committed inputs are what the rebuilt sampler draws
            assert np.array_equal(np.load(os.path.join(folder, f"inputs/{n}.npy")), value.numpy()), f"{name}: inputs/{n}.npy differs"
        out, _ = run(model, inputs)
        committed = np.load(os.path.join(folder, f"outputs/{output}.npy"))
        difference = np.abs(out - committed).max() / np.abs(committed).max()
        if difference > 1e-6:
            sys.exit(f"{name}: the rebuilt model's output differs from outputs/{output}.npy by {difference:.3g} of its largest; not exporting")
        with tempfile.TemporaryDirectory() as scratch:
            again = os.path.join(scratch, "opset17.onnx")
            export_at(model, inputs, output, out.ndim, seq_dynamic, again, 17)
            with open(again, "rb") as a, open(os.path.join(folder, "opset17.onnx"), "rb") as b:
                if a.read() != b.read():
                    sys.exit(f"{name}: the rebuilt model's opset-17 export differs from the committed opset17.onnx; not exporting")
        print(f"{name}: same model (opset17.onnx byte-identical, outputs within {difference:.2g})", flush=True)
        for opset in NEW_OPSETS:
            ops = export_at(model, inputs, output, out.ndim, seq_dynamic, os.path.join(folder, f"opset{opset}.onnx"), opset)
            print(f"{name} opset{opset}: {os.path.getsize(os.path.join(folder, f'opset{opset}.onnx'))} bytes; ops {' '.join(ops)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
