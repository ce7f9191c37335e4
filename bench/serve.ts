/**
 * The scoring server under load: `npm run bench:serve -- [--model-dir DIR] [--duration 60] [--mix-duration 20]`.
 * Starts `cli.js serve` as a child process on 127.0.0.1, drives it with autocannon from this process, and
 * prints throughput, latency percentiles, status classes, server CPU and the server's RSS before and after.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { Command, Option } from "commander";
import { integer, number } from "../lib/args";
import { loadModel } from "../lib/model-io";
import { BODY_LIMIT } from "../lib/serve";
import { cacheRoot, PRESETS, random } from "../lib/synthetic";

const cli = path.join(__dirname, "..", "lib", "cli.js");

const seconds = (name: string) => number(name, 0);
const READY_TIMEOUT_S = 600;

const options = new Command("bench:serve")
  .description("Load the scoring server (a child process on 127.0.0.1) with autocannon: a userId run, then a mix with bad input.")
  .option("--model-dir <dir>", "the model to serve (default: .cache/models/<preset>, trained once if missing)")
  .addOption(new Option("--preset <name>", "synthetic preset trained when --model-dir is not given").choices(Object.keys(PRESETS)).default("32m"))
  .option("--duration <s>", "seconds of the userId run", seconds("--duration"), 60)
  .option("--mix-duration <s>", "seconds of the bad-input mix run", seconds("--mix-duration"), 20)
  .option("--warmup <s>", "seconds of userId load before measuring, not counted", seconds("--warmup"), 5)
  .option("--workers <n>", "server processes (serve --workers; one per core)", integer("--workers", 1), os.cpus().length)
  .option("--connections <n>", "concurrent connections", integer("--connections", 1), 64)
  .parse()
  .opts();

type HttpRequest = { method: "GET" | "POST"; path: string; headers: Record<string, string>; body?: string };
type Kind = { name: string; expect: number; weight: number; make: () => HttpRequest };

const json = (body: unknown): HttpRequest => ({ method: "POST", path: "/score", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });

const mb = (kB: number) => `${(kB / 1024).toFixed(1)} MB`;
const fmt = (x: number) => Math.round(x).toLocaleString("en-US");

/** The server's process and, with --workers, its worker processes. */
function serverPids(pid: number): number[] {
  return [pid, ...readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number)];
}

function rssKB(pid: number): number {
  return serverPids(pid).reduce((sum, p) => sum + Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"))![1]), 0);
}

/** CPU seconds the server has used (utime + stime, in USER_HZ = 100 ticks per second on Linux). */
function cpuSeconds(pid: number): number {
  return serverPids(pid).reduce((sum, p) => {
    const fields = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1].split(" ");
    return sum + (Number(fields[11]) + Number(fields[12])) / 100;
  }, 0);
}

async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address() as net.AddressInfo;
  probe.close();
  return port;
}

async function ensureModel(): Promise<string> {
  if (options.modelDir) return options.modelDir;
  const dir = path.join(cacheRoot(), "models", options.preset);
  if (!(await loadModel(dir).then(() => true, () => false))) {
    console.log(`no model in ${dir}: training the '${options.preset}' preset once`);
    const train = spawn(process.execPath, [cli, "train", "--synthetic", options.preset, "--model-dir", dir], { stdio: "inherit" });
    const [code] = await once(train, "exit");
    if (code !== 0) throw new Error(`training exited with ${code}, expected 0`);
  }
  return dir;
}

async function waitReady(url: string, server: ChildProcess): Promise<void> {
  for (const deadline = Date.now() + READY_TIMEOUT_S * 1000; Date.now() < deadline;) {
    if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode} before it was ready`);
    const status = await fetch(`${url}/ready`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`expected /ready to answer 200 within ${READY_TIMEOUT_S} s, it did not`);
}

/** autocannon for `duration` s; `onStatus` hears each response with the kind of its request (one request in flight per connection). */
async function load(url: string, duration: number, next: () => { kind: string; request: HttpRequest }, onStatus?: (kind: string, status: number) => void): Promise<autocannon.Result> {
  return autocannon({
    url, duration, connections: options.connections,
    requests: [{
      setupRequest: (_, context) => {
        const { kind, request } = next();
        (context as { kind: string }).kind = kind;
        return request as autocannon.Request;
      },
      onResponse: onStatus && ((status, _, context) => onStatus((context as { kind: string }).kind, status)),
    }],
  });
}

type Sample = { rss: number; cpu: number; at: number; ownCpu: number };

function row(name: string, r: autocannon.Result, before: Sample, after: Sample): string[] {
  const answered = r["1xx"] + r["2xx"] + r["3xx"] + r["4xx"] + r["5xx"];
  return [name, fmt(r.requests.average), String(r.latency.p50), String(r.latency.p90), String(r.latency.p99),
    fmt(r["2xx"]), fmt(r["4xx"]), fmt(r["5xx"]), fmt(r.errors + r.timeouts), fmt(((after.cpu - before.cpu) / answered) * 1e6),
    `${fmt((100 * (after.cpu - before.cpu)) / (after.at - before.at))} / ${fmt((100 * (after.ownCpu - before.ownCpu)) / (after.at - before.at))}`,
    mb(before.rss), mb(after.rss), `${(((after.rss - before.rss) / before.rss) * 100).toFixed(1)}%`];
}

function shuffle<T extends { length: number; [i: number]: unknown }>(xs: T, rand: () => number): T {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ")).join("\n");
}

async function main(): Promise<void> {
  const modelDir = await ensureModel();
  const model = await loadModel(modelDir);
  const rand = random(42);
  const users = shuffle(Int32Array.from(model.users.userId), rand);
  const movies = model.movies.movieId;
  console.log(`model ${modelDir}: ${fmt(users.length)} users, ${fmt(movies.length)} movies, ${fmt(model.neighbours.indices.length)} neighbours`);

  const loadBefore = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Request logging stays on as in production; its lines go to /dev/null.
  const server = spawn(process.execPath, [cli, "serve", "--model-dir", modelDir, "--host", "127.0.0.1", "--port", String(port), "--workers", String(options.workers)], { stdio: ["ignore", "ignore", "inherit"] });
  const exited = once(server, "exit");
  try {
    await measure(server, url, users, movies, rand, loadBefore);
  } finally {
    server.kill("SIGTERM");
    const [code, signal] = await exited;
    console.log(`\nserver exit after SIGTERM: code ${code}, signal ${signal}`);
  }
}

async function measure(server: ChildProcess, url: string, users: Int32Array, movies: Int32Array, rand: () => number, loadBefore: string): Promise<void> {
  const pick = <T>(xs: ArrayLike<T>) => xs[Math.floor(rand() * xs.length)];
  const t0 = performance.now();
  await waitReady(url, server);
  const pid = server.pid!;
  console.log(`server pid ${pid} on ${url}: ready in ${((performance.now() - t0) / 1000).toFixed(1)} s, RSS ${mb(rssKB(pid))}`);

  let u = 0;
  const userRequest = () => json({ userId: users[u++ % users.length], n: 10 });
  const byUserId = () => ({ kind: "userId", request: userRequest() });
  if (options.warmup > 0) await load(url, options.warmup, byUserId);
  const sample = (): Sample => {
    const own = process.cpuUsage();
    return { rss: rssKB(pid), cpu: cpuSeconds(pid), at: performance.now() / 1000, ownCpu: (own.user + own.system) / 1e6 };
  };
  const rows = [["run", "req/s", "p50 ms", "p90 ms", "p99 ms", "2xx", "4xx", "5xx", "errors", "server CPU µs/req", "CPU % server / bench", "RSS before", "RSS after", "growth"]];
  let before = sample();
  const byUser = await load(url, options.duration, byUserId);
  rows.push(row(`userId ${options.duration}s`, byUser, before, sample()));

  const oversized = json({ movieIds: Array(Math.ceil(BODY_LIMIT / 2)).fill(movies[0]) });
  const unknownMovies = () => [movies[movies.length - 1] + 1 + Math.floor(rand() * 1000), pick(movies)];
  const kinds: Kind[] = [
    { name: "userId", expect: 200, weight: 60, make: userRequest },
    { name: "movieIds", expect: 200, weight: 20, make: () => json({ movieIds: Array.from({ length: 3 + Math.floor(rand() * 8) }, () => pick(movies)), n: 10 }) },
    { name: "similarTo", expect: 200, weight: 20, make: () => json({ similarTo: pick(movies), n: 20 }) },
    { name: "batch of 10", expect: 200, weight: 5, make: () => json({ batch: Array.from({ length: 10 }, (_, i) => (i % 2 ? { userId: pick(users) } : { similarTo: pick(movies) })) }) },
    { name: "GET /ready", expect: 200, weight: 5, make: () => ({ method: "GET", path: "/ready", headers: {} }) },
    { name: "unknown userId", expect: 404, weight: 10, make: () => json({ userId: -1 - Math.floor(rand() * 1000) }) },
    { name: "unknown movieIds", expect: 400, weight: 10, make: () => json({ movieIds: unknownMovies() }) },
    { name: "malformed JSON", expect: 400, weight: 10, make: () => json(`{"userId": ${pick(users)},`) },
    { name: "wrong type", expect: 400, weight: 10, make: () => json({ userId: String(pick(users)) }) },
    { name: "n out of range", expect: 400, weight: 10, make: () => json({ similarTo: pick(movies), n: 101 + Math.floor(rand() * 1000) }) },
    { name: "extra field", expect: 400, weight: 10, make: () => json({ userId: pick(users), debug: true }) },
    { name: "no request field", expect: 400, weight: 5, make: () => json({ n: 10 }) },
    { name: "batch of 101", expect: 400, weight: 2, make: () => json({ batch: Array(101).fill({ userId: pick(users) }) }) },
    { name: "wrong content type", expect: 415, weight: 10, make: () => ({ ...json({ userId: pick(users) }), headers: { "content-type": "text/plain" } }) },
    { name: "no such route", expect: 404, weight: 5, make: () => ({ method: "GET", path: "/admin", headers: {} }) },
    { name: "body over 1.5 MiB", expect: 413, weight: 1, make: () => oversized },
  ];
  // Built up front, so that the load generator spends its time sending, not building.
  const pool = shuffle(kinds.flatMap((k) => Array.from({ length: k.weight * 20 }, () => ({ kind: k.name, request: k.make() }))), rand);
  const counts = new Map(kinds.map((k) => [k.name, new Map<number, number>()]));
  let i = 0;
  const mixRequest = () => pool[i++ % pool.length];
  before = sample();
  const mix = await load(url, options.mixDuration, mixRequest, (kind, status) => {
    const c = counts.get(kind)!;
    c.set(status, (c.get(status) ?? 0) + 1);
  });
  rows.push(row(`mix ${options.mixDuration}s`, mix, before, sample()));
  rows.push(["target (32m)", ">= 5,000", "", "", "<= 20", "", "", "0", "", "", "", "", "", "< 5%"]);

  const loadAfter = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  console.log(`\n${options.connections} connections, autocannon in this process, the server in pid ${pid} with ${options.workers} worker(s) (RSS and CPU summed over its processes; ${os.cpus().length} cores; load average before ${loadBefore}, after ${loadAfter})\n`);
  console.log(table(rows));
  console.log("\nerrors: connections reset while sending a body the server refused unread (413 closes the connection).");
  console.log("mix latency overstates: fastify closes the connection after a body it cannot parse (400, 413); autocannon has already");
  console.log("queued its next request there, and times each later response on that connection from a request that was lost.");
  console.log("\nmix by kind (status: count):");
  console.log(table([["kind", "expected", "got"], ...kinds.map((k) => [k.name, String(k.expect),
    [...counts.get(k.name)!].map(([s, n]) => `${s}: ${fmt(n)}`).join(", ") || "-"])]));
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
