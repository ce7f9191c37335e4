import { parentPort, workerData } from "node:worker_threads";
import { solveTask } from "./als";
import { rankTask } from "./evaluate";
import { parseChunkTask, sha256Task } from "./ingest";
import { countTask, mergeTask, rowsTask } from "./neighbours";
import type { Task } from "./workers";

/** The tasks a worker thread can run (see runTask in workers.ts). */
const TASKS: Record<string, Task<never, unknown>> = {
  "neighbours.count": countTask,
  "neighbours.merge": mergeTask,
  "neighbours.rows": rowsTask,
  "evaluate.rank": rankTask,
  "als.solve": solveTask,
  "ingest.parse": parseChunkTask,
  "ingest.sha256": sha256Task,
};

const { name, shared, index, threads } = workerData as { name: string; shared: never; index: number; threads: number };
parentPort!.postMessage(TASKS[name](shared, index, threads));
