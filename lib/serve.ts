import cluster from "node:cluster";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { Command } from "commander";
import { integer } from "./args";
import Fastify, { type FastifyError, type FastifyInstance, LogController } from "fastify";
import { DEFAULT_MODEL_DIR, loadModel, type Model } from "./model-io";
import { DEFAULTS } from "./params";
import { rankInKernel, recommendForMovies, recommendForUser, similarTo, UnknownIdError } from "./recommend";
import { excerpt, listSome } from "./text";

/** The managed online endpoint's own request limit (../shared/spec/azure.md, section 3). */
export const BODY_LIMIT = 1.5 * 1024 * 1024;
const MAX_BATCH = 100;
/** Deepest JSON nesting accepted; a valid request nests 4 levels ({"batch": [{"movieIds": [...]}]}). */
export const MAX_DEPTH = 32;

/** How long a connection may take (ms): for its headers, its whole request, idle between requests, silent in either direction. */
export interface Timeouts {
  headers: number;
  request: number;
  keepAlive: number;
  idle: number;
}

// keepAlive above the 60 s of common load balancers, so that they close first; idle (no byte either way) above keepAlive.
export const TIMEOUTS: Timeouts = { headers: 10_000, request: 30_000, keepAlive: 72_000, idle: 75_000 };
/** After SIGTERM, in-flight requests have this long (ms) to finish; then their connections are closed. */
export const SHUTDOWN_GRACE = 3_000;

const n = { type: "integer", minimum: 1, maximum: 100, default: DEFAULTS.n };
const movieIds = { type: "array", items: { type: "integer" } };
const kinds = {
  // a known user, who may just have liked movieIds too
  userId: { userId: { type: "integer" }, movieIds, n },
  movieIds: { movieIds, userId: { type: "integer" }, n },
  similarTo: { similarTo: { type: "integer" }, n },
};
// anyOf + if/then rather than oneOf: a bad body then fails in one branch, and the error names the field at fault.
const exactlyOneOf = (k: Record<string, Record<string, object>>) => ({
  type: "object",
  anyOf: Object.keys(k).map((key) => ({ required: [key] })),
  allOf: Object.entries(k).map(([key, properties]) => ({
    if: { required: [key] },
    then: { type: "object", properties, additionalProperties: false },
  })),
});
const scoreBody = exactlyOneOf({
  ...kinds,
  batch: { batch: { type: "array", minItems: 1, maxItems: MAX_BATCH, items: exactlyOneOf(kinds) } },
});

type Single = { userId: number; movieIds?: number[]; n: number } | { movieIds: number[]; n: number } | { similarTo: number; n: number };
type ScoreRequest = Single | { batch: Single[] };
type Answer = ReturnType<typeof recommendForUser>;

interface SchemaError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
  data?: unknown;
  parentSchema?: { properties?: object };
}

/** One sentence for the first schema violation, naming the field, what it must be and what came. */
function describeSchemaError(errors: SchemaError[], dataVar: string): string {
  const at = (e: SchemaError) => dataVar + e.instancePath.replace(/\/(\d+)/g, "[$1]").replace(/\//g, ".");
  const anyOf = errors.find((e) => e.keyword === "anyOf");
  if (anyOf) {
    const keys = errors.filter((e) => e.keyword === "required" && e.instancePath === anyOf.instancePath).map((e) => e.params.missingProperty);
    const got = Object.keys(anyOf.data as object);
    return `${at(anyOf)} must have one of the fields ${keys.join(", ")}, got ${got.length ? listSome(got) : "none"}`;
  }
  const e = errors.find((x) => x.keyword !== "if")!;
  if (e.keyword === "additionalProperties") {
    const allowed = Object.keys(e.parentSchema?.properties ?? {});
    return `${at(e)} has an unexpected field "${excerpt(String(e.params.additionalProperty))}" (expected only ${allowed.join(", ")})`;
  }
  const got = Array.isArray(e.data) && /Items$/.test(e.keyword) ? `${e.data.length} items` : preview(e.data);
  return `${at(e)} ${e.message}, got ${got}`;
}

const preview = (x: unknown) => {
  const s = typeof x === "number" ? String(x) : JSON.stringify(x) ?? String(x);
  return s.length > 40 ? `${excerpt(s.slice(0, 37))}...` : excerpt(s);
};

/** Whether `value` (parsed JSON) nests deeper than `max` arrays and objects; iterative, so any depth is safe. */
function nestsDeeper(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > max) return true;
    for (const child of Object.values(v)) if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

const badRequest = (message: string) => Object.assign(new Error(message), { statusCode: 400 });

const statusOf = (e: UnknownIdError) => (e.kind === "userId" ? 404 : 400);

function answer(model: Model, request: Single): Answer {
  if ("userId" in request) return recommendForUser(model, request.userId, request.n, request.movieIds);
  if ("movieIds" in request) return recommendForMovies(model, request.movieIds, request.n);
  return similarTo(model, request.similarTo, request.n);
}

export interface AppOptions {
  /** Fastify's JSON logger on stdout (lifecycle and errors); default true. */
  logger?: boolean;
  /** One log line per request: method, route, status, ms; default true. Never bodies or headers. */
  logRequests?: boolean;
  /** Default TIMEOUTS. */
  timeouts?: Timeouts;
}

/** The scoring app: /live, /ready (once `getModel()` returns a model) and /score. */
export function buildApp(getModel: () => Model | undefined, { logger = true, logRequests = true, timeouts = TIMEOUTS }: AppOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: logger && { base: null },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false, verbose: true } },
    schemaErrorFormatter: (errors, dataVar) => {
      try {
        return new Error(describeSchemaError(errors as SchemaError[], dataVar));
      } catch {
        return new Error(`${dataVar} does not match the request schema`);
      }
    },
    // Node checks the headers and request timeouts every connectionsCheckingInterval (default 30 s).
    http: { headersTimeout: timeouts.headers, connectionsCheckingInterval: Math.min(1000, timeouts.headers / 2) },
    requestTimeout: timeouts.request,
    keepAliveTimeout: timeouts.keepAlive,
    connectionTimeout: timeouts.idle,
  });
  // Only JSON is a request; without this fastify would parse text/plain into a string (a 400, not a 415).
  app.removeContentTypeParser("text/plain");
  // fastify's JSON parser (which refuses __proto__ and constructor.prototype), then a depth limit: deeper bodies would
  // overflow the stack of whatever walks them recursively (JSON.stringify while describing a schema error).
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    void parseJson(request, body as string, (error, value) => {
      if (error) done(error, undefined);
      else if (nestsDeeper(value, MAX_DEPTH)) done(badRequest(`body nests arrays and objects deeper than ${MAX_DEPTH} levels`), undefined);
      else done(null, value);
    });
  });

  // A keep-alive connection whose request was in flight at close would otherwise hold the process open.
  app.addHook("onSend", async (_, reply) => {
    if (!app.server.listening) reply.header("connection", "close");
  });

  if (logRequests) {
    app.addHook("onResponse", async (request, reply) => {
      const route = request.routeOptions.url ?? excerpt(request.url.split("?")[0], 100);
      request.log.info({ method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }, "request");
    });
  }

  app.setErrorHandler((error: FastifyError | UnknownIdError, request, reply) => {
    if (error instanceof UnknownIdError) return reply.code(statusOf(error)).send({ error: error.message });
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const message = error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" ? `expected content-type application/json, got ${excerpt(request.headers["content-type"] ?? "none", 100)}`
        : error.code === "FST_ERR_CTP_BODY_TOO_LARGE" ? `expected a body of at most ${BODY_LIMIT} bytes (1.5 MiB), got more`
        : error.code === "FST_ERR_CTP_INVALID_JSON_BODY" ? "body is not valid JSON (or has a __proto__ or constructor.prototype key)"
        : error.message;
      return reply.code(status).send({ error: message });
    }
    request.log.error({ err: error }, "request failed");
    return reply.code(500).send({ error: "internal error" });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${excerpt(request.method, 20)} ${excerpt(request.url.split("?")[0], 100)}; expected GET /live, GET /ready or POST /score` });
  });

  app.get("/live", async () => ({ live: true }));

  app.get("/ready", async (_, reply) => (getModel() ? { ready: true } : reply.code(503).send({ error: "model not loaded yet" })));

  app.post("/score", { schema: { body: scoreBody } }, async (request, reply) => {
    const model = getModel();
    if (!model) return reply.code(503).send({ error: "model not loaded yet" });
    const body = request.body as ScoreRequest;
    if (!("batch" in body)) return answer(model, body);
    return {
      results: body.batch.map((item) => {
        try {
          return answer(model, item);
        } catch (e) {
          if (e instanceof UnknownIdError) return { error: e.message, status: statusOf(e) };
          throw e;
        }
      }),
    };
  });

  return app;
}

/** The shallowest directory under `root` holding a model.json (how the Azure ML container finds its model). */
export async function findModelDir(root: string): Promise<string> {
  const found = (await readdir(root, { recursive: true }))
    .filter((p) => path.basename(p) === "model.json")
    .sort((a, b) => a.split(path.sep).length - b.split(path.sep).length || a.localeCompare(b));
  if (found.length === 0) throw new Error(`expected a model.json under ${root}, found none`);
  return path.join(root, path.dirname(found[0]));
}

interface ServeOptions extends AppOptions {
  modelDir?: string;
  host: string;
  port: number;
}

/**
 * Listens at once (so /live answers), then loads the model (so /ready turns 200); SIGTERM or SIGINT
 * stops accepting and gives in-flight requests SHUTDOWN_GRACE to finish, then closes their connections.
 * A model that cannot be loaded ends the process.
 */
async function serve({ modelDir, host, port, ...options }: ServeOptions): Promise<void> {
  let model: Model | undefined;
  const app = buildApp(() => model, options);
  let closing = false;
  // Idempotent: a worker of a cluster gets Ctrl-C twice, from the terminal and from its primary.
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info(`${signal}: closing, finishing in-flight requests`);
    void app.close();
    setTimeout(() => {
      app.log.warn(`requests still in flight ${SHUTDOWN_GRACE} ms after ${signal}: closing their connections`);
      app.server.closeAllConnections();
      // Whatever else holds the process (a model still loading), it ends now.
      setTimeout(() => process.exit(), 1000).unref();
    }, SHUTDOWN_GRACE).unref();
  };
  process.on("SIGTERM", stop).on("SIGINT", stop);
  // A cluster worker's channel to its primary would keep it alive after the server closed.
  app.addHook("onClose", async () => cluster.worker?.disconnect());
  await app.listen({ host, port });
  try {
    const azure = process.env.AZUREML_MODEL_DIR;
    const dir = modelDir ?? (azure ? await findModelDir(azure) : DEFAULT_MODEL_DIR);
    const t0 = performance.now();
    const loaded = await loadModel(dir);
    // the kernel only speeds up: a model too large for its memory is ranked in script
    if (!loaded.als) await rankInKernel(loaded.neighbours, loaded.popular).catch((e: Error) => app.log.warn(`ranking in script: ${excerpt(e.message, 500)}`));
    model = loaded;
    app.log.info(`model loaded from ${dir} in ${Math.round(performance.now() - t0)} ms: ${model.movies.movieId.length} movies, ${model.users.userId.length} users`);
  } catch (e) {
    app.log.error(`cannot load the model: ${excerpt((e as Error).message, 500)}`);
    process.exitCode = 1;
    await app.close();
  }
}

/**
 * Forks `workers` server processes sharing one port (node:cluster) and passes SIGTERM and SIGINT on. A worker that
 * dies is replaced, unless more than `workers` died within a minute (a model that crashes every worker): then all stop.
 */
function supervise(workers: number): void {
  let stopping = false;
  const deaths: number[] = [];
  const log = (level: number, msg: string) => console.error(JSON.stringify({ level, time: Date.now(), msg }));
  const stopAll = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    // A worker ends within its SHUTDOWN_GRACE; one that does not is killed.
    setTimeout(() => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGKILL");
    }, SHUTDOWN_GRACE + 3000).unref();
  };
  process.on("SIGTERM", stopAll).on("SIGINT", stopAll);
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    deaths.push(now);
    while (deaths[0] <= now - 60_000) deaths.shift();
    const died = `worker ${worker.process.pid} exited with ${signal ?? code}`;
    if (deaths.length > workers) {
      log(50, `${died}; ${deaths.length} workers died within a minute (more than ${workers}): stopping the service`);
      process.exitCode = 1;
      stopAll("SIGTERM");
    } else {
      log(40, `${died}; starting another`);
      cluster.fork();
    }
  });
  for (let i = 0; i < workers; i++) cluster.fork();
}

/** The `serve` command of the CLI. */
export function serveCommand(): Command {
  return new Command("serve")
    .description("Serve recommendations over HTTP: GET /live, GET /ready, POST /score (JSON).")
    .option("--model-dir <dir>", "the trained model (default: the directory holding model.json under $AZUREML_MODEL_DIR if set, else models/latest)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on (0: any free port)", integer("--port", 0, 65535), 5001)
    .option("--workers <n>", "server processes sharing the port, each with its own copy of the model (use one per core)", integer("--workers", 1), 1)
    .option("--quiet", "no log line per request")
    .addHelpText("after", `
POST /score takes one of
  {"userId": 99802, "n": 10}          a known user's history (every movie they rated is excluded)
  {"userId": 99802, "movieIds": [1]}   the same user, who just liked these movies too
  {"movieIds": [1, 50, 296], "n": 10}  someone who liked these movies
  {"similarTo": 1, "n": 10}           a movie's neighbours
  {"batch": [ ...up to ${MAX_BATCH} of the above... ]}
n is 1..100, default ${DEFAULTS.n}. Answers {"recommendations": [{movieId, title, genres, score}], "fallback": null | "popular"},
or for a batch {"results": [ answer | {"error", "status"} ]} in request order. Bad input gets 4xx {"error": "..."}.`)
    .action(async (o) => {
      if (o.workers > 1 && cluster.isPrimary) return supervise(o.workers);
      await serve({ modelDir: o.modelDir, host: o.host, port: o.port, logRequests: !o.quiet });
    });
}
