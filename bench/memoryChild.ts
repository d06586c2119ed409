/**
 * The child process of the memory benchmark: loads n rows into a fresh PostgreSQL dataset through
 * `Pipeline.run`, then prints one JSON line with its RSS after startup (same imports, nothing run)
 * and its peak RSS. Usage (bundled by bench/lib/compiled.ts): node memoryChild.mjs <rows> <postgres url> [pipestate|copy]
 * (`copy`: the postgres load baseline instead, for comparison).
 */
import * as NodeFs from "node:fs"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { Effect, Redacted } from "effect"
import { from as copyFrom } from "pg-copy-streams"
import { Destination, Pipeline, Progress } from "../src/index.js"
import { connect, dropSchema, freshName, makeTempDir, removeDir } from "./lib/env.js"
import { rowsSource } from "./lib/pipestate.js"
import { csvChunks, PG_COLUMNS, rows } from "./lib/rows.js"
import { gc } from "./lib/stats.js"

const startupRss = process.memoryUsage().rss

const vmHwm = (): number | null => {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(NodeFs.readFileSync("/proc/self/status", "utf8"))
    return match === null ? null : Number(match[1]) * 1024
  } catch {
    return null
  }
}

const [rowsArg, url, mode = "pipestate"] = process.argv.slice(2)
const n = Number(rowsArg)
if (!Number.isInteger(n) || n <= 0 || url === undefined || (mode !== "pipestate" && mode !== "copy")) {
  console.error("usage: memoryChild.ts <rows> <postgres url> [pipestate|copy]")
  process.exit(2)
}

// sampled while loading, to tell a growing heap from a lazy collector
let maxHeapUsed = 0
let maxExternal = 0
let maxHeapTotal = 0
const sampler = setInterval(() => {
  const m = process.memoryUsage()
  maxHeapUsed = Math.max(maxHeapUsed, m.heapUsed)
  maxExternal = Math.max(maxExternal, m.external)
  maxHeapTotal = Math.max(maxHeapTotal, m.heapTotal)
}, 50)

// the peak RSS so far at each phase boundary: tells whether extraction or the commit (COPY) peaks
const peakAt: Record<string, number | null> = {}
const progress: Progress.ProgressShape = {
  phase: (_pipeline, phase) =>
    Effect.sync(() => {
      peakAt[phase] = vmHwm()
    }),
  rows: () => Effect.void,
  resourceDone: () => Effect.void
}

const batchSize =
  process.env.PIPESTATE_BENCH_BATCH_SIZE === undefined ? undefined : Number(process.env.PIPESTATE_BENCH_BATCH_SIZE)

/** Pipeline.run into a fresh dataset: the rows loaded. */
const loadPipestate = async (dataset: string, dir: string): Promise<number> => {
  const summary = await Effect.runPromise(
    Pipeline.run(rowsSource(n)).pipe(
      Effect.provideService(Progress.Progress, progress),
      Effect.provide(
        Pipeline.layerNode({
          name: "bench_pg_rss",
          dataset,
          pipelinesDir: dir,
          // for experiments only: the benchmark runs with the default batch size
          ...(batchSize === undefined ? {} : { batchSize })
        })
      ),
      Effect.provide(Destination.postgres({ url: Redacted.make(url) }))
    )
  )
  return summary.tables.players ?? 0
}

/** The postgres load baseline (COPY FROM STDIN of CSV built in JS), for comparison. */
const loadCopy = async (schema: string): Promise<number> => {
  const client = await connect(url)
  try {
    await client.query(`CREATE SCHEMA "${schema}"`)
    await client.query("BEGIN")
    await client.query(`CREATE TABLE "${schema}".players (${PG_COLUMNS})`)
    const copy = client.query(copyFrom(`COPY "${schema}".players FROM STDIN WITH (FORMAT csv)`))
    await pipeline(Readable.from(csvChunks(rows(n), 1000)), copy)
    await client.query("COMMIT")
    return copy.rowCount
  } finally {
    await client.end()
  }
}

const dataset = freshName("bench_pg_rss")
const dir = makeTempDir("rss")
const start = performance.now()
try {
  const loaded = mode === "copy" ? await loadCopy(dataset) : await loadPipestate(dataset, dir)
  const ms = performance.now() - start
  const peakRss = process.resourceUsage().maxRSS * 1024
  clearInterval(sampler)
  gc()
  console.log(
    JSON.stringify({
      rows: loaded,
      ms,
      startupRss,
      peakRss,
      vmHwm: vmHwm(),
      maxHeapUsed,
      maxExternal,
      maxHeapTotal,
      heapUsedAfterGc: process.memoryUsage().heapUsed,
      peakAtExtractEnd: peakAt.commit ?? null
    })
  )
} finally {
  clearInterval(sampler)
  await dropSchema(url, dataset)
  removeDir(dir)
}
