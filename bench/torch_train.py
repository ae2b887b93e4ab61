"""PyTorch side of `npm run bench -- train`: ms per training step (forward, loss, backward, optimizer
step) for the same models, batches and optimizers as teardown's side, at a given thread count.

Cases: mlp (784-256-256-10, batch 128, SGD momentum 0.9), cnn (the gpt fixtures' CNN architecture:
conv-relu-maxpool, conv-batchnorm-relu-avgpool, fc-sigmoid, head; batch 64, AdamW), transformer
(the grokking model: 1 layer, d_model 128, 4 heads, d_mlp 512, ReLU, no LayerNorm; full batch of
3831 sequences of 3 tokens; AdamW lr 1e-3, weight decay 1, betas 0.9/0.98), lstm (fused nn.LSTM,
hidden 128, reading 28x28 images row by row, the last state to a 10-class head; batch 64, AdamW).
"""
import argparse, json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(784, 256), nn.Linear(256, 256), nn.Linear(256, 10)

    def forward(self, x):
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CNN(nn.Module):  # the fixture CNN (test/fixtures/cnn)
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.bn2, self.fc, self.head = nn.BatchNorm2d(16), nn.Linear(16 * 7 * 7, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.head(torch.sigmoid(self.fc(x.flatten(1))))


class Transformer(nn.Module):  # as teardown's builder writes it (src/train/transformer.ts), ln=false
    def __init__(self, vocab=114, classes=113, d=128, heads=4, d_mlp=512, seq=3):
        super().__init__()
        self.heads = heads
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(seq, d) / d ** 0.5)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d))
        self.unembed = nn.Linear(d, classes)
        self.register_buffer("mask", torch.triu(torch.full((seq, seq), -1e9), 1))

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos
        B, T, D = x.shape
        q, k, v = (t.reshape(B, T, self.heads, D // self.heads).transpose(1, 2) for t in self.qkv(x).split(D, dim=-1))
        pattern = torch.softmax(q @ k.transpose(-2, -1) / (D // self.heads) ** 0.5 + self.mask, dim=-1)
        x = x + self.proj((pattern @ v).transpose(1, 2).reshape(B, T, D))
        x = x + self.mlp(x)
        return self.unembed(x)


class LSTMClassifier(nn.Module):  # teardown's lstm:hidden=128 on images (src/train/lstm.ts)
    def __init__(self, rows=28, hidden=128, classes=10):
        super().__init__()
        self.lstm, self.head = nn.LSTM(rows, hidden), nn.Linear(hidden, classes)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x.squeeze(1).transpose(0, 1))  # rows as steps: [28, batch, 28]
        return self.head(h_n[-1])


def case(name):
    g = torch.Generator().manual_seed(0)
    if name == "mlp":
        model = MLP()
        return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), torch.rand(128, 784, generator=g), torch.randint(0, 10, (128,), generator=g), False
    if name == "cnn":
        model = CNN()
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3), torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g), False
    if name == "lstm":
        model = LSTMClassifier()
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3), torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g), False
    model = Transformer()
    tokens = torch.randint(0, 113, (3831, 3), generator=g)
    tokens[:, 2] = 113
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98)), tokens, torch.randint(0, 113, (3831,), generator=g), True


def main():
    """Serves timing blocks: reads a step count per line from stdin, runs that many steps, prints
    one JSON line with each step's milliseconds and the block's CPU time ÷ wall time. The caller
    alternates these blocks with its own, so both sides see the same machine conditions."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--case"); parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, optimizer, x, y, last = case(args.case)
    model.train()

    def step():
        logits = model(x)
        loss = F.cross_entropy(logits[:, -1] if last else logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        times = []
        cpu_start = time.process_time()
        for _ in range(int(line)):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        print(json.dumps({"times_ms": [1000 * t for t in times], "cpu_per_wall": (time.process_time() - cpu_start) / sum(times)}), flush=True)


main()
