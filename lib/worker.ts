import { parentPort, workerData } from "node:worker_threads";
import type { Task } from "./workers";

/** The tasks a worker thread can run (see runTask in workers.ts): each name's module and export, loaded alone. */
export const TASKS: Record<string, [module: string, task: string]> = {
  "neighbours.count": ["./neighbours", "countTask"],
  "neighbours.merge": ["./neighbours", "mergeTask"],
  "neighbours.rows": ["./neighbours", "rowsTask"],
  "evaluate.rank": ["./evaluate", "rankTask"],
  "als.fit": ["./als", "fitTask"],
  "ingest.parse": ["./ingest", "parseChunkTask"],
  "ingest.sha256": ["./ingest", "sha256Task"],
  "split.rate": ["./split", "splitTask"],
  "encode.rank": ["./split", "encodeTask"],
  "csr.fill": ["./csr", "csrTask"],
};

if (parentPort) {
  const { name, shared, index, threads } = workerData as { name: string; shared: never; index: number; threads: number };
  const [module, task] = TASKS[name];
  parentPort.postMessage((require(module) as Record<string, Task<never, unknown>>)[task](shared, index, threads));
}
