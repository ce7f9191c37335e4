import type { Model } from "./model-io";

/** A title folded for matching: lower case, no accents, no year, no leading or trailing English article, punctuation as spaces. */
export function foldTitle(title: string): string {
  return title.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/\s*\(\d{4}[^)]*\)\s*$/, "")
    .replace(/,\s*(the|a|an)\s*$/, "")
    .replace(/^\s*(the|a|an)\s+/, "")
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

export class TitleError extends Error {
  override name = "TitleError";
}

const SHOWN = 10;

/**
 * The movie (movieId_enc) a title names: the exact title in any case, else the one whose folded title
 * equals the folded query, else the one whose folded title holds the query's words. None, or more than
 * one at the first level that matches, throws a TitleError listing them, most liked first.
 */
export function movieByTitle(model: Pick<Model, "movies">, query: string): number {
  const { title, likes, movieId } = model.movies;
  const lower = query.trim().toLowerCase(), folded = foldTitle(query);
  const levels = [
    (m: number) => title[m].toLowerCase() === lower,
    (m: number) => foldTitle(title[m]) === folded,
    (m: number) => folded !== "" && ` ${foldTitle(title[m])} `.includes(` ${folded} `),
  ];
  for (const matches of levels) {
    const found = title.flatMap((_, m) => (matches(m) ? [m] : []));
    if (found.length === 1) return found[0];
    if (found.length > 1) {
      found.sort((a, b) => likes[b] - likes[a] || movieId[a] - movieId[b]);
      const list = found.slice(0, SHOWN).map((m) => `  ${String(movieId[m]).padStart(7)}  ${title[m]}`).join("\n");
      const more = found.length > SHOWN ? `\n  ... and ${found.length - SHOWN} more` : "";
      throw new TitleError(`"${query}" matches ${found.length} movies; give a movieId or the full title:\n${list}${more}`);
    }
  }
  throw new TitleError(`no movie titled "${query}" in the model`);
}
