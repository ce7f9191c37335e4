import { SingleBar } from "cli-progress";
import type { Progress } from "./ingest";

/** What progress counts: bytes (read or downloaded), or units of work. */
export type Unit = "bytes" | "work";

const RATE: Record<Unit, (perSecond: number) => string> = {
  bytes: (b) => `${(b / 1e6).toFixed(1)} MB/s`,
  work: (x) => `${(x / 1000).toFixed(1)}k units/s`,
};

/**
 * Progress of long stages on stderr: a bar with rate and ETA on a terminal, else a plain line at
 * every 20%. Returns, per stage, the callback that lib functions advance.
 */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr): (stage: string, unit?: Unit) => Progress {
  return (stage, unit = stage === "ingest" ? "bytes" : "work") => {
    const start = performance.now();
    const rate = (done: number) => {
      const seconds = (performance.now() - start) / 1000;
      return seconds > 0 ? RATE[unit](done / seconds) : "";
    };
    if (stream.isTTY) {
      const bar = new SingleBar({ stream, format: `${stage.padEnd(11)} [{bar}] {percentage}% | {rate} | ETA {eta}s`, hideCursor: true, clearOnComplete: true });
      let started = false;
      return (done, total) => {
        if (!started) { bar.start(total, 0, { rate: "" }); started = true; }
        bar.update(done, { rate: rate(done) });
        if (done >= total) bar.stop();
      };
    }
    let next = 0.2;
    return (done, total) => {
      if (total <= 0 || done / total < next || done >= total) return;
      const seconds = (performance.now() - start) / 1000;
      stream.write(`${stage.padEnd(11)} ${Math.floor((100 * done) / total)}%  ${rate(done)}  ETA ${Math.ceil((seconds * (total - done)) / done)} s\n`);
      while (next <= done / total) next += 0.2;
    };
  };
}
