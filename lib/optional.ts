/**
 * Runs `load`, which requires optional dependencies (the image's install leaves them out); when one is missing,
 * says which and how to install it.
 */
export function loadOptional<T>(what: string, load: () => T): T {
  try {
    return load();
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND" && /Cannot find module '([^./][^']*)'/.exec((e as Error).message);
    if (!missing) throw e;
    throw new Error(`${what} need ${missing[1]}, an optional dependency that this install left out (npm install without --omit=optional adds it)`);
  }
}
