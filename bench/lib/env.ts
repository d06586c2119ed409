/**
 * What the benchmarks share: the figures they report, the run options, PostgreSQL access, temp dirs
 * and the raw better-sqlite3 driver.
 */
import * as NodeFs from "node:fs"
import { createRequire } from "node:module"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import pg from "pg"

/** A target a figure is checked against. */
export type Target =
  | { readonly kind: "ratio>="; readonly value: number }
  | { readonly kind: "value<"; readonly value: number }

/** One measured figure. `ratio` is always pipestate's throughput / the baseline's (higher is better). */
export interface Figure {
  readonly name: string
  readonly value: number | null
  readonly unit: string
  readonly baseline: number | null
  readonly ratio: number | null
  readonly target?: Target
  /** what the baseline is, shown under the table */
  readonly note?: string
  /** a failed correctness check: the figure is reported, but the run fails */
  readonly error?: string
}

export interface BenchOptions {
  readonly quick: boolean
  /** 1 at full size, 0.1 with --quick */
  readonly scale: number
  /** repetitions of the throughput benchmarks (each runs baseline and pipestate) */
  readonly reps: number
  readonly postgresUrl: string | undefined
  /** --side: run only one side (for profiling); the other side's figures come out as NaN */
  readonly side: "both" | "pipestate" | "baseline"
  /** --profile <dir>: CPU profiles of the measured pipestate runs (commit overhead) go there */
  readonly profileDir: string | undefined
  /** --trace: also print a wall-time breakdown (SQL statements, destination calls) of extra runs */
  readonly trace: boolean
  /** false when a figure (by name) is filtered out by --only */
  readonly wants: (figure: string) => boolean
  readonly log: (line: string) => void
}

export interface Benchmark {
  readonly id: string
  /** the figures it produces (for --only and for skipped postgres figures) */
  readonly figures: ReadonlyArray<string>
  readonly needsPostgres?: boolean
  readonly run: (options: BenchOptions) => Promise<ReadonlyArray<Figure>>
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------------

export const POSTGRES_URL =
  process.env.PIPESTATE_BENCH_POSTGRES_URL ??
  process.env.PIPESTATE_TEST_POSTGRES_URL ??
  "postgres://postgres@127.0.0.1:5432/test"

/** undefined when the server answers, else why not */
export const probePostgres = async (url: string): Promise<string | undefined> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query("SELECT 1")
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  } finally {
    await client.end().catch(() => undefined)
  }
}

export const connect = async (url: string): Promise<pg.Client> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  return client
}

export const withClient = async <A>(url: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = await connect(url)
  try {
    return await f(client)
  } finally {
    await client.end()
  }
}

let counter = 0

/** A fresh, lowercase identifier-safe name (a dataset, schema or pipeline). */
export const freshName = (prefix: string): string =>
  `${prefix}_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`

export const dropSchema = (url: string, schema: string): Promise<void> =>
  withClient(url, async (client) => {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  })

// ---------------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------------

export const makeTempDir = (prefix: string): string =>
  NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), `pipestate-bench-${prefix}-`))

export const removeDir = (dir: string): void => NodeFs.rmSync(dir, { recursive: true, force: true })

// ---------------------------------------------------------------------------------------------------
// better-sqlite3 (no type package is installed: the little used here is typed by hand)
// ---------------------------------------------------------------------------------------------------

export interface SqliteStatement {
  run(...params: ReadonlyArray<unknown>): unknown
  get(...params: ReadonlyArray<unknown>): unknown
}

export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement
  exec(sql: string): unknown
  pragma(pragma: string): unknown
  transaction<A extends ReadonlyArray<unknown>>(f: (...args: A) => void): (...args: A) => void
  close(): void
}

export const openSqlite = createRequire(import.meta.url)("better-sqlite3") as new (filename: string) => SqliteDatabase
