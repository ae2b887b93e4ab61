"""Times a 512x512x512 float32 matrix product in PyTorch under the OpenBLAS settings of its environment
(OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS) and checks it against numpy's float64 product of the same
inputs. Prints one JSON line: {"gflops": ... (best of 30), "max_rel_error": ...}. Run by bench/run.ts (peerBlas),
one fresh process per candidate core type: OpenBLAS reads OPENBLAS_CORETYPE once, when it loads.
"""
import json, os, time
import numpy as np
import torch

threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))
torch.set_num_threads(threads)
rng = np.random.default_rng(0)
a = rng.standard_normal((512, 512), dtype=np.float32)
b = rng.standard_normal((512, 512), dtype=np.float32)
reference = a.astype(np.float64) @ b.astype(np.float64)
ta, tb = torch.from_numpy(a), torch.from_numpy(b)
product = (ta @ tb).numpy().astype(np.float64)
error = float(np.abs(product - reference).max() / np.abs(reference).max())
for _ in range(5):  # warm-up: thread pools, page faults
    ta @ tb
times = []
for _ in range(30):
    start = time.perf_counter()
    ta @ tb
    times.append(time.perf_counter() - start)
seconds = min(times)  # the kernel's speed: on this shared machine slower repetitions measure the neighbours
print(json.dumps({"gflops": 2 * 512**3 / seconds / 1e9, "max_rel_error": error}))
