import type { Manifest } from "../model-io";

/** What the run gets from a model's manifest. */
type Logged = Pick<Manifest, "params" | "input" | "metrics" | "baseline" | "timings"> & { fit?: Manifest["fit"] };

/** The run a job logs to, from the environment Azure ML gives a command job. */
export interface MlflowRun {
  /** Base of the MLflow REST API: https://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/.../workspaces/<ws>, or a plain MLflow server. */
  baseUrl: string;
  runId: string;
  token?: string;
}

/** An Azure ML workspace's tracking URI, as a job gets it in $MLFLOW_TRACKING_URI. */
const AZUREML_TRACKING = /^azureml:\/\/([^/?#]+)(\/mlflow\/v\d+\.\d+\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.MachineLearningServices\/workspaces\/[^/?#]+)\/?(?:\?.*)?$/i;

/**
 * The job's MLflow run, as Microsoft's azureml-mlflow plugin finds it inside a job: MLFLOW_TRACKING_URI
 * (azureml://<host>/mlflow/v1.0/<workspace scope>, served at https://<host>/mlflow/v1.0/<workspace scope>),
 * MLFLOW_TRACKING_TOKEN (a bearer token) and MLFLOW_RUN_ID; undefined unless all are there.
 * An http(s):// tracking URI is taken as a plain MLflow server (its token optional).
 */
export function mlflowRunFromEnv(env: NodeJS.ProcessEnv = process.env): MlflowRun | undefined {
  const uri = env.MLFLOW_TRACKING_URI, runId = env.MLFLOW_RUN_ID, token = env.MLFLOW_TRACKING_TOKEN || undefined;
  if (!uri || !runId) return undefined;
  const azureml = AZUREML_TRACKING.exec(uri);
  if (azureml) return token ? { baseUrl: `https://${azureml[1]}${azureml[2]}`, runId, token } : undefined;
  if (/^https?:\/\//i.test(uri)) return { baseUrl: uri.replace(/\/+$/, ""), runId, token };
  throw new RangeError(`MLFLOW_TRACKING_URI must be azureml://<host>/mlflow/v1.0/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<ws> or http(s)://..., got "${uri}"`);
}

interface LogBatch {
  run_id: string;
  params: { key: string; value: string }[];
  metrics: { key: string; value: number; timestamp: number; step: number }[];
  tags: { key: string; value: string }[];
}

/** The training's parameters and metrics as one MLflow log-batch: metrics, baseline_<metric>, time_<stage>_s. */
export function logBatchOf(manifest: Logged, runId: string, timestamp = Date.now()): LogBatch {
  const params = Object.entries({ ...manifest.params, source: manifest.input.source, fit: manifest.fit })
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([key, value]) => ({ key, value: String(value) }));
  const values: [string, number][] = [
    ...Object.entries(manifest.metrics),
    ...Object.entries(manifest.baseline ?? {}).map(([k, v]): [string, number] => [`baseline_${k}`, v]),
    ...Object.entries(manifest.timings).map(([k, ms]): [string, number] => [`time_${k}_s`, ms / 1000]),
  ];
  const metrics = values.filter(([, v]) => Number.isFinite(v)).map(([key, value]) => ({ key, value, timestamp, step: 0 }));
  return { run_id: runId, params, metrics, tags: [] };
}

/** POSTs one batch to the run (the REST API takes up to 100 params and 1000 metrics per call; we send ~40). */
export async function logBatch(run: MlflowRun, batch: LogBatch, timeoutMs = 30_000): Promise<void> {
  const url = `${run.baseUrl}/api/2.0/mlflow/runs/log-batch`;
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(run.token ? { authorization: `Bearer ${run.token}` } : {}) },
    body: JSON.stringify(batch),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) throw new Error(`POST ${url} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
}

/**
 * Logs the training's parameters and metrics to the job's own MLflow run, so they show on the job's page in
 * Azure ML studio. A no-op outside a job (no MLflow environment); a failure only warns: it never fails the training.
 */
export async function reportToMlflow(manifest: Logged, env: NodeJS.ProcessEnv = process.env, warn = (line: string) => console.error(line)): Promise<void> {
  try {
    const run = mlflowRunFromEnv(env);
    if (!run) return;
    await logBatch(run, logBatchOf(manifest, run.runId));
    console.log(`metrics logged to MLflow run ${run.runId}`);
  } catch (e) {
    const cause = (e as Error & { cause?: Error }).cause; // fetch's own message is only "fetch failed"
    warn(`warning: metrics not logged to MLflow: ${(e as Error).message}${cause?.message ? ` (${cause.message})` : ""}`);
  }
}
