import { createInterface } from "node:readline/promises";
import { Command, Option } from "commander";
import { integer, number } from "../args";
import { AZURE_ENV_HELP, AzureError, DEFAULT_TIMEOUT_MINUTES, connect } from "./client";
import {
  DEFAULT_SETTINGS, type Settings, type Teardown, createDataAsset, createDeployment, createEndpoint, createImage, deleteEndpoint,
  deploy, invoke, jobNameOf, registerModel, scoredTable, setTraffic, settingsFrom, submitJob, waitForJob,
} from "./steps";

type Key = keyof Settings;
const OPTIONS: Record<Key, () => Option> = {
  data: () => new Option("--data <location>", "the MovieLens folder: a Blob location or azureml://datastores/<ds>/paths/<path> (default $AZUREML_DATA)"),
  dataName: () => new Option("--data-name <name>", "data asset name").default(DEFAULT_SETTINGS.dataName),
  dataVersion: () => new Option("--data-version <v>", "data asset version").default(DEFAULT_SETTINGS.dataVersion),
  image: () => new Option("--image <image>", "a prebuilt deploy/Dockerfile image, e.g. <acr>.azurecr.io/movielens-recsys:0.1.0 (default $AZUREML_IMAGE; without it Azure ML builds the image from the build context)"),
  environmentName: () => new Option("--environment-name <name>", "environment name").default(DEFAULT_SETTINGS.environmentName),
  environmentVersion: () => new Option("--environment-version <v>", "environment version").default(DEFAULT_SETTINGS.environmentVersion),
  compute: () => new Option("--compute <name>", `compute cluster for the job (default $AZUREML_COMPUTE, else ${DEFAULT_SETTINGS.compute})`),
  jobName: () => new Option("--job-name <name>", "job name (default movielens-train-<hash of the job>, so a re-run finds the same job)"),
  modelName: () => new Option("--model-name <name>", "registered model name").default(DEFAULT_SETTINGS.modelName),
  modelVersion: () => new Option("--model-version <v>", "registered model version").default(DEFAULT_SETTINGS.modelVersion),
  endpoint: () => new Option("--endpoint <name>", "online endpoint name (default $AZUREML_ENDPOINT, else movielens-<hash of the workspace>)"),
  deployment: () => new Option("--deployment <name>", "deployment name").default(DEFAULT_SETTINGS.deployment),
  instanceType: () => new Option("--instance-type <sku>", "VM size of the deployment").default(DEFAULT_SETTINGS.instanceType),
  user: () => new Option("--user <id>", "userId to recommend for").argParser(integer("--user")).default(DEFAULT_SETTINGS.user),
  n: () => new Option("--n <n>", "how many recommendations").argParser(integer("--n")).default(DEFAULT_SETTINGS.n),
};

const DATA: Key[] = ["data", "dataName", "dataVersion"];
const ENVIRONMENT: Key[] = ["image", "environmentName", "environmentVersion"];
const JOB: Key[] = [...DATA, "environmentName", "environmentVersion", "compute", "jobName"];
const MODEL: Key[] = ["modelName", "modelVersion"];
const SERVE: Key[] = ["endpoint", "deployment"];

type StepOptions = Partial<Settings> & { dryRun?: boolean; pollInterval: number; timeout: number; yes?: boolean; models?: boolean };

/**
 * A subcommand taking `keys`, --dry-run, --poll-interval and --timeout; `run` gets the connection and the settings.
 * Ctrl-C stops the waits (what Azure does goes on); a second Ctrl-C exits at once.
 */
function stepCommand(name: string, description: string, keys: Key[], run: (az: ReturnType<typeof connect>, s: Settings, o: StepOptions) => Promise<unknown>): Command {
  const cmd = new Command(name).description(description)
    .option("--dry-run", "print each request (method, URL with api-version, JSON body) instead of sending it")
    .option("--poll-interval <seconds>", "between polls of the job and of long-running operations", number("--poll-interval", 0), 15)
    .option("--timeout <minutes>", "how long each wait (the job, each long-running operation) may take", number("--timeout", 0), DEFAULT_TIMEOUT_MINUTES);
  for (const key of new Set(keys)) cmd.addOption(OPTIONS[key]());
  return cmd.action(async (o: StepOptions) => {
    const interrupt = new AbortController();
    const onInterrupt = () => (interrupt.signal.aborted ? process.exit(130) : interrupt.abort());
    process.on("SIGINT", onInterrupt);
    try {
      const az = connect({ dryRun: o.dryRun, pollMs: o.pollInterval * 1000, timeoutMs: o.timeout * 60_000, signal: interrupt.signal });
      await run(az, settingsFrom(o, process.env, o.dryRun), o);
    } finally {
      process.off("SIGINT", onInterrupt);
    }
  });
}

/** Asks on the terminal before deleting; without one, refuses unless --yes. */
async function confirmOnTerminal(t: Teardown, o: StepOptions): Promise<boolean> {
  const what = [t.endpoint && `endpoint ${t.endpoint}${t.deployments.length ? ` with deployment ${t.deployments.join(", ")}` : ""}`, ...t.models.map((m) => `model ${m}`)].filter(Boolean).join(", ");
  if (o.yes || o.dryRun) return true;
  if (!process.stdin.isTTY) throw new AzureError(`azure delete would delete ${what}: it asks on a terminal, and there is none; pass --yes to delete without asking`);
  const terminal = createInterface({ input: process.stdin, output: process.stdout });
  // Ctrl-C (which readline takes from the terminal) and Ctrl-D end the question with a no.
  const closed = new Promise<string>((resolve) => terminal.once("close", () => resolve("")));
  terminal.once("SIGINT", () => terminal.close());
  try {
    return /^y(es)?$/i.test((await Promise.race([terminal.question(`Delete ${what}? [y/N] `).catch(() => ""), closed])).trim());
  } finally {
    terminal.close();
  }
}

const printScored = (scored: Awaited<ReturnType<typeof invoke>>) => scored && console.log(scoredTable(scored));

/** `azure <step>`: the Azure ML flow one step at a time, or all of it with `azure deploy`. */
export const azureCommand = new Command("azure")
  .description("Train and deploy on Azure ML: data asset, image (environment), command job, model, endpoint, blue deployment, traffic, invoke; delete.")
  .addHelpText("after", `\n${AZURE_ENV_HELP}\n\nExample: movielens-recsys azure deploy --dry-run; movielens-recsys azure delete --models --dry-run`)
  .addCommand(stepCommand("data", "Create the data asset (uri_folder) for the MovieLens folder.", DATA, (az, s) => createDataAsset(az, s)))
  .addCommand(stepCommand("image", "Create the environment (with the scoring routes) from deploy/Dockerfile's build context, uploaded to the default datastore for Azure ML to build; or from --image.", ENVIRONMENT, (az, s) => createImage(az, s)).alias("environment"))
  .addCommand(stepCommand("job", "Submit the command job that runs `train` on the data asset.", JOB, (az, s) => submitJob(az, s)))
  .addCommand(stepCommand("wait", "Wait for the command job to complete, printing its status.", JOB, (az, s) => waitForJob(az, jobNameOf(az, s))))
  .addCommand(stepCommand("model", "Register the job's model output as a model version.", [...JOB, ...MODEL], (az, s) => registerModel(az, s, jobNameOf(az, s))))
  .addCommand(stepCommand("endpoint", "Create the managed online endpoint (key auth).", ["endpoint"], (az, s) => createEndpoint(az, s)))
  .addCommand(stepCommand("deployment", "Create the blue deployment (Standard_E2s_v3, 1 instance) of the model.", [...SERVE, "instanceType", ...MODEL, "environmentName", "environmentVersion"], (az, s) => createDeployment(az, s)))
  .addCommand(stepCommand("traffic", "Send 100% of the endpoint's traffic to the deployment.", SERVE, (az, s) => setTraffic(az, s)))
  .addCommand(stepCommand("invoke", "Ask the endpoint for a user's recommendations and print them.", [...SERVE, "user", "n"], async (az, s) => printScored(await invoke(az, s))))
  .addCommand(stepCommand("deploy", "Run every step in order; each skips what already exists.", Object.keys(OPTIONS) as Key[], async (az, s) => printScored(await deploy(az, s))))
  .addCommand(stepCommand("delete", "Delete the endpoint with its deployments (it bills until deleted) and, with --models, every version of the registered model; asks first.", [...SERVE, "modelName"],
    (az, s, o) => deleteEndpoint(az, s, { models: o.models, confirm: (t) => confirmOnTerminal(t, o) }))
    .option("--models", "also delete every version of the registered model (--model-name)")
    .option("-y, --yes", "delete without asking"));
