/**
 * The benchmark's rows: deterministic (row i is always the same), generated lazily one at a time
 * from an iterator, never materialized. 10 columns: a bigint id, 3 text, 2 double, 2 timestamp,
 * a boolean and a small nested object (json).
 *
 * pipestate reads them as `Stream.fromIterable(rows(n))`; the baselines iterate the very same
 * iterable, so generation costs the same on both sides.
 */

export interface BenchRow {
  readonly id: number
  readonly name: string
  readonly email: string
  readonly city: string
  readonly score: number
  readonly ratio: number
  readonly created_at: Date
  readonly updated_at: Date
  readonly active: boolean
  readonly meta: { readonly level: number; readonly tags: ReadonlyArray<string>; readonly source: string }
}

// one city needs CSV quoting, two are not ASCII
const CITIES = ["Berlin", "São Paulo", "Washington, D.C.", "Tokyo", "Lagos", "Zürich", "New York", "Mumbai"] as const
const TAGS: ReadonlyArray<ReadonlyArray<string>> = [["rapid"], ["rapid", "blitz"], ["chess", "bullet", "titled"], []]
const BASE = Date.UTC(2024, 0, 1)

/** A 32-bit mix of i (murmur3's finalizer): deterministic, well spread. */
const mix = (i: number): number => {
  let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Row i. Doubles are never integral, so type inference sees a double in every row. */
export const makeRow = (i: number): BenchRow => {
  const h = mix(i)
  return {
    id: i + 1,
    name: `Player ${i}`,
    email: `player${i}@example.com`,
    city: CITIES[h & 7]!,
    score: (h % 100_000) / 4 + 0.125,
    ratio: (h + 0.5) / 4_294_967_296,
    created_at: new Date(BASE + i * 1000),
    updated_at: new Date(BASE + i * 1000 + (h % 86_400_000)),
    active: (h & 256) !== 0,
    meta: { level: h % 50, tags: TAGS[(h >>> 4) & 3]!, source: "bench" }
  }
}

/** n rows, lazily: each `next()` builds one row. */
export const rows = (n: number): Iterable<BenchRow> => ({
  [Symbol.iterator]: (): Iterator<BenchRow> => {
    let i = 0
    return {
      next: (): IteratorResult<BenchRow> =>
        i < n ? { done: false, value: makeRow(i++) } : { done: true, value: undefined }
    }
  }
})

// ---------------------------------------------------------------------------------------------------
// The baselines' encodings
// ---------------------------------------------------------------------------------------------------

/** The baseline table's columns (PostgreSQL types). */
export const PG_COLUMNS =
  "id bigint, name text, email text, city text, score double precision, ratio double precision, " +
  "created_at timestamptz, updated_at timestamptz, active boolean, meta jsonb"

/** The baseline table's columns (SQLite types, the ones pipestate's SQLite destination declares). */
export const SQLITE_COLUMNS =
  "id INTEGER, name TEXT, email TEXT, city TEXT, score REAL, ratio REAL, " +
  "created_at TIMESTAMP, updated_at TIMESTAMP, active BOOLEAN, meta JSON"

const NEEDS_QUOTES = /[",\n\r]/
const csvText = (s: string): string => (NEEDS_QUOTES.test(s) ? `"${s.replaceAll('"', '""')}"` : s)

/** A CSV line, the plain way: toISOString, String(number), JSON.stringify. */
export const csvLine = (r: BenchRow): string =>
  `${r.id},${csvText(r.name)},${csvText(r.email)},${csvText(r.city)},${r.score},${r.ratio},` +
  `${r.created_at.toISOString()},${r.updated_at.toISOString()},${r.active ? "t" : "f"},` +
  `"${JSON.stringify(r.meta).replaceAll('"', '""')}"\n`

/** CSV text in pieces of `perChunk` rows, built as the rows are pulled. */
export function* csvChunks(source: Iterable<BenchRow>, perChunk: number): Generator<string> {
  let out = ""
  let count = 0
  for (const row of source) {
    out += csvLine(row)
    if (++count === perChunk) {
      yield out
      out = ""
      count = 0
    }
  }
  if (out !== "") yield out
}

/** The values better-sqlite3 binds for a row (it cannot bind Date, boolean or objects). */
export const sqliteValues = (r: BenchRow): Array<string | number> => [
  r.id,
  r.name,
  r.email,
  r.city,
  r.score,
  r.ratio,
  r.created_at.toISOString(),
  r.updated_at.toISOString(),
  r.active ? 1 : 0,
  JSON.stringify(r.meta)
]
