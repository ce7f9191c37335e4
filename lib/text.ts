// Control characters (C0, DEL, C1), line and paragraph separators, bidi overrides and isolates.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` fit for a terminal or a log line: unsafe characters as \u escapes, at most `max` characters then how many more. */
export function excerpt(text: string, max = 60): string {
  const head = text.length > max ? text.slice(0, max) : text;
  const safe = head.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return text.length > max ? `${safe}... (${(text.length - max).toLocaleString("en-US")} more characters)` : safe;
}

/** The first `max` items joined by ", ", then how many more. */
export function listSome(items: ArrayLike<unknown>, max = 10): string {
  const shown = Array.from({ length: Math.min(max, items.length) }, (_, i) => excerpt(String(items[i])));
  return items.length > max ? `${shown.join(", ")} and ${(items.length - max).toLocaleString("en-US")} more` : shown.join(", ");
}
