import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];

export interface ChromiumOptions {
  /** Device pixels per CSS pixel (2: sharp screenshots). */
  deviceScaleFactor?: number;
  /** The one origin the browser may reach (a local server, e.g. http://127.0.0.1:8888); unset, none. */
  origin?: string;
}

/** Debian's headless Chromium with a fresh profile, no network but `origin`; `close` ends it and removes the profile. */
export async function openChromium({ deviceScaleFactor = 1, origin }: ChromiumOptions = {}): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = await mkdtemp(path.join(os.tmpdir(), "chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium", args: ARGS, offline: origin === undefined, deviceScaleFactor,
  });
  await context.route("**/*", (route) => (origin !== undefined && new URL(route.request().url()).origin === origin ? route.continue() : route.abort()));
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
