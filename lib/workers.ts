import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import type { Progress } from "./ingest";

/** A task run on every thread: `index` of `threads`; the work is shared out through `shared`. */
export type Task<S, R> = (shared: S, index: number, threads: number) => R;

/** The cores this process may use. */
export const defaultThreads = (): number => os.availableParallelism?.() ?? os.cpus().length;

// Compiled, lib/worker.js sits beside this file; under tslab (lib/*.ts compiled in memory) it does not,
// and tasks then run in this thread, with the same results.
const WORKER_FILE = path.join(__dirname, "worker.js");

/**
 * Runs the task named `name` (registered in worker.ts) on `threads` worker threads, or in this
 * thread when threads is 1 or no compiled worker exists. `progress` is a shared counter that the
 * task advances up to `total`; it is reported every half second. When a thread fails or `signal`
 * aborts, the other threads are ended, and the error (or the abort's reason) thrown once all have exited.
 */
export async function runTask<S, R>(
  name: string, task: Task<S, R>, shared: S, threads: number,
  progress?: { counter: Int32Array; total: number; report: Progress }, signal?: AbortSignal,
): Promise<R[]> {
  signal?.throwIfAborted();
  if (threads <= 1 || !existsSync(WORKER_FILE)) return [task(shared, 0, 1)];
  const stop = new AbortController();
  const abort = () => stop.abort();
  signal?.addEventListener("abort", abort, { once: true });
  const timer = progress && setInterval(() => progress.report(Atomics.load(progress.counter, 0), progress.total), 500);
  const runs = Array.from({ length: threads }, (_, index) => spawn<R>(name, shared, index, threads, stop.signal));
  try {
    return await Promise.all(runs);
  } catch (e) {
    stop.abort();
    await Promise.allSettled(runs);
    throw signal?.aborted ? signal.reason : e;
  } finally {
    if (timer) clearInterval(timer);
    signal?.removeEventListener("abort", abort);
  }
}

/** Runs the task named `name` on one worker thread, so that the caller goes on meanwhile; `signal` ends the thread (the promise then rejects once it has exited). */
export async function runInWorker<S, R>(name: string, task: Task<S, R>, shared: S, signal?: AbortSignal): Promise<R> {
  return existsSync(WORKER_FILE) ? spawn<R>(name, shared, 0, 1, signal) : task(shared, 0, 1);
}

function spawn<R>(name: string, shared: unknown, index: number, threads: number, signal?: AbortSignal): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const worker = new Worker(WORKER_FILE, { workerData: { name, shared, index, threads } });
    signal?.addEventListener("abort", () => void worker.terminate(), { once: true });
    worker.once("message", resolve);
    worker.once("error", reject);
    // A result posted just before the exit may still be queued: let it settle the promise first.
    worker.once("exit", (code) => setImmediate(() => reject(new Error(`worker ${index} of task ${name} exited with code ${code}`))));
  });
}

/**
 * Waits till all `threads` threads of a task have called it; reusable. `sync` (sharedArray(Int32Array, 2), the same
 * for all) counts the arrivals and the passages.
 */
export function barrier(sync: Int32Array, threads: number): void {
  const passage = Atomics.load(sync, 1);
  if (Atomics.add(sync, 0, 1) === threads - 1) {
    Atomics.store(sync, 0, 0);
    Atomics.add(sync, 1, 1);
    Atomics.notify(sync, 1);
  } else {
    while (Atomics.load(sync, 1) === passage) Atomics.wait(sync, 1, passage);
  }
}

/** `array` in shared memory, so that worker threads read it without copying: itself if it is there already, else a copy. */
export function shared<T extends Int32Array | Float64Array | Float32Array | Uint8Array | Uint16Array>(array: T): T {
  if (array.buffer instanceof SharedArrayBuffer) return array;
  const Ctor = array.constructor as new (buffer: SharedArrayBuffer) => T;
  const copy = new Ctor(new SharedArrayBuffer(array.byteLength));
  copy.set(array as never);
  return copy;
}

/** A zeroed typed array in shared memory. */
export function sharedArray<T>(Ctor: { new (buffer: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number }, length: number): T {
  return new Ctor(new SharedArrayBuffer(length * Ctor.BYTES_PER_ELEMENT));
}
