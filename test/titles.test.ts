import { test } from "node:test";
import assert from "node:assert/strict";
import { foldTitle, movieByTitle, TitleError } from "../lib/titles";

const TITLES = ["Toy Story (1995)", "Toy Story 2 (1999)", "Matrix, The (1999)", "Hamlet (1948)", "Hamlet (1996)", "Misérables, Les (1995)", "Usual Suspects, The (1995)", "Hamlet 2 (2008)"];
const model = { movies: { movieId: Int32Array.from(TITLES, (_, i) => 10 * (i + 1)), title: TITLES, genres: TITLES.map(() => ""), likes: Int32Array.from([50, 40, 60, 3, 9, 5, 20, 1]) } };
const idOf = (query: string) => model.movies.movieId[movieByTitle(model, query)];

test("a title folds to lower case without accents, year, articles or punctuation", () => {
  assert.equal(foldTitle("Matrix, The (1999)"), "matrix");
  assert.equal(foldTitle("The Matrix"), "matrix");
  assert.equal(foldTitle("Misérables, Les (1995)"), "miserables les");
  assert.equal(foldTitle("Star Wars: Episode IV - A New Hope (1977)"), "star wars episode iv a new hope");
});

test("titles name movies: exact, then folded, then by their words", () => {
  assert.equal(idOf("toy story"), 10); // equal once folded; Toy Story 2 only contains it
  assert.equal(idOf("Toy Story 2"), 20);
  assert.equal(idOf("The Matrix"), 30);
  assert.equal(idOf("matrix, the (1999)"), 30);
  assert.equal(idOf("Hamlet (1996)"), 50);
  assert.equal(idOf("miserables"), 60);
  assert.equal(idOf("usual suspects"), 70);
});

test("an ambiguous title lists its matches, most liked first; an unknown one says so", () => {
  assert.throws(() => movieByTitle(model, "hamlet"), new TitleError('"hamlet" matches 2 movies; give a movieId or the full title:\n       50  Hamlet (1996)\n       40  Hamlet (1948)'));
  assert.throws(() => movieByTitle(model, "story"), /^TitleError: "story" matches 2 movies/);
  assert.throws(() => movieByTitle(model, "Casablanca"), new TitleError('no movie titled "Casablanca" in the model'));
  assert.throws(() => movieByTitle(model, " , "), new TitleError('no movie titled " , " in the model'));
});
