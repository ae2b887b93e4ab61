/**
 * Freeing a run's values at once instead of when the garbage collector gets to them.
 *
 * A run's values live in ArrayBuffers that onnxruntime-node allocates with malloc. Dropped, they
 * are freed only after V8 collects them, which is in the middle of the next batch's run: its new
 * buffers are allocated while the old ones still stand, so glibc's heap grows past one batch, and
 * the holes the old ones leave are not given back to the system. On the scale bench's cache case
 * (GPT-2 small, 136 hooks, 892 MB a batch) the heap settled 100–150 MB higher than when each batch
 * is freed before the next runs (docs/performance-log.md, "Scale" 10).
 *
 * JavaScript cannot free an ArrayBuffer, but it can transfer one: posted through a MessageChannel
 * whose ports are closed, the message is dropped with the memory it owns.
 */
import { MessageChannel } from 'node:worker_threads';
import type { Tensor } from '../tensor.ts';

/** Buffers a run made for its own results: no feed, constant or cached value shares them. */
const owned = new WeakSet<ArrayBufferLike>();

/** Marks the buffers of `values` as the run's own, so that releaseRunValues may free them. */
export function markRunValues(values: Iterable<Tensor>): void {
  for (const value of values) owned.add(value.data.buffer);
}

/**
 * Frees the memory of the values a run returned (runWithCache's cache and outputs), now: only
 * buffers the run made itself (never a feed, a constant or a value cached by the model; the
 * others are left alone). The released tensors must not be read again, nor any value of the same
 * run that shares their memory (a hook and the model output it is): their data becomes empty.
 * Streaming callers release a batch once it is written, before the next runs.
 */
export async function releaseRunValues(values: Iterable<Tensor>): Promise<void> {
  const buffers = new Set<ArrayBuffer>();
  for (const value of values) {
    const buffer = value.data.buffer;
    if (owned.has(buffer) && buffer.byteLength > 0 && buffer instanceof ArrayBuffer)
      buffers.add(buffer);
  }
  if (buffers.size === 0) return;
  for (const buffer of buffers) owned.delete(buffer);
  const { port1, port2 } = new MessageChannel();
  const closed = new Promise((resolve) => port1.once('close', resolve));
  port1.postMessage(null, [...buffers]);
  // The message is never received: closing both ports drops it, and with it the buffers'
  // memory, by the time the close event fires.
  port1.close();
  port2.close();
  await closed;
}
