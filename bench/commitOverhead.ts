/**
 * commit overhead: a run whose resource yields no rows but changes one state key, so the run is
 * all overhead: restore, extract (nothing), commit of the state row. Median wall time of 20 runs,
 * split by the Progress phase boundaries; against a bare transaction inserting one row into a table
 * of the same database (median of 20), on SQLite and on PostgreSQL. Runs alternate with baseline
 * transactions.
 */
import * as NodePath from "node:path"
import { Effect, Layer, ManagedRuntime, Option, Redacted, Stream } from "effect"
import { Destination, Pipeline, Progress, Resource, ResourceState, Source } from "../src/index.js"
import {
  type BenchOptions,
  type Benchmark,
  connect,
  dropSchema,
  type Figure,
  freshName,
  makeTempDir,
  openSqlite,
  removeDir
} from "./lib/env.js"
import { type PhaseMarks, phaseDurations, phaseRecorder } from "./lib/pipestate.js"
import { startProfile } from "./lib/profiler.js"
import { recordingTracer, summarize, type TraceRecord, timedDestination } from "./lib/trace.js"
import { gc, median, now } from "./lib/stats.js"

const RUNS = 20
const WARMUP = 2

/** One resource, no rows, one state key changed per run. */
const tickSource = Source.make({
  name: "bench",
  resources: [
    Resource.make(
      { name: "tick" },
      Stream.execute(ResourceState.update("ticks", (current) => (Option.getOrElse(current, () => 0) as number) + 1))
    )
  ]
})

interface Sample {
  readonly total: number
  readonly restore: number
  readonly extract: number
  readonly commit: number
  readonly other: number
}

/** The bare transaction of the baseline, on the same database. */
interface BaselineTx {
  readonly run: (i: number) => Promise<void>
  readonly close: () => Promise<void>
}

const measure = async (
  label: "sqlite" | "postgres",
  destination: Layer.Layer<Destination.Destination, unknown>,
  dataset: string,
  dir: string,
  openBaseline: () => Promise<BaselineTx>,
  options: BenchOptions
): Promise<ReadonlyArray<Figure>> => {
  const { side, log } = options
  const runtime = ManagedRuntime.make(
    Layer.merge(destination, Pipeline.layerNode({ name: `bench_commit_${label}`, dataset, pipelinesDir: dir }))
  )
  try {
    const once = async (): Promise<Sample> => {
      const marks: PhaseMarks = {}
      gc()
      const start = now()
      const summary = await runtime.runPromise(
        Pipeline.run(tickSource).pipe(Effect.provideService(Progress.Progress, phaseRecorder(marks)))
      )
      const total = now() - start
      if (summary.loadId === null || !summary.stateChanged) {
        throw new Error(`commit overhead ${label}: the run did not commit a new state`)
      }
      const phases = phaseDurations(marks)
      return { total, ...phases, other: total - phases.inside }
    }
    for (let i = 0; i < WARMUP; i++) await once() // the first run creates the system tables
    const baseline = await openBaseline()
    const samples: Array<Sample> = []
    const bare: Array<number> = []
    const stopProfile =
      options.profileDir === undefined ? undefined : await startProfile(options.profileDir, `commit-overhead-${label}`)
    try {
      for (let i = 0; i < RUNS; i++) {
        if (side !== "baseline") samples.push(await once())
        if (side === "pipestate") continue
        // no forced GC here: a one-row transaction allocates little, and each forced full GC adds ~50 ms to the benchmark
        const start = now()
        await baseline.run(i)
        bare.push(now() - start)
      }
    } finally {
      await stopProfile?.(log)
      await baseline.close()
    }
    if (options.trace) await traceRuns(label, destination, dataset, dir, log)
    const m = (f: (s: Sample) => number) => median(samples.map(f))
    const value = m((s) => s.total)
    const base = median(bare)
    log(
      `  ${label}: run median ${value.toFixed(1)} ms (restore ${m((s) => s.restore).toFixed(1)}, extract ${m((s) => s.extract).toFixed(1)}, commit ${m((s) => s.commit).toFixed(1)}, other ${m((s) => s.other).toFixed(1)}); bare transaction ${base.toFixed(2)} ms`
    )
    const name = `commit overhead ${label}`
    const part = (phase: keyof Omit<Sample, "total">): Figure => ({
      name: `${name} ${phase}`,
      value: m((s) => s[phase]),
      unit: "ms",
      baseline: null,
      ratio: null
    })
    return [
      {
        name,
        value,
        unit: "ms",
        baseline: base,
        ratio: base / value,
        target: { kind: "value<", value: label === "sqlite" ? 15 : 35 },
        note: `baseline: a bare transaction inserting one row into a table of the same ${label === "sqlite" ? "SQLite file (better-sqlite3)" : "PostgreSQL database (pg: BEGIN, INSERT, COMMIT)"}; median of ${RUNS}`
      },
      part("restore"),
      part("extract"),
      part("commit"),
      part("other")
    ]
  } finally {
    await runtime.dispose()
  }
}

const TRACE_RUNS = 10

/** --trace: extra runs (not in the figures) with every SQL statement and destination call timed. */
const traceRuns = async (
  label: string,
  destination: Layer.Layer<Destination.Destination, unknown>,
  dataset: string,
  dir: string,
  log: (line: string) => void
): Promise<void> => {
  const records: Array<TraceRecord> = []
  const runtime = ManagedRuntime.make(
    Layer.merge(
      timedDestination(records)(destination),
      Pipeline.layerNode({ name: `bench_commit_${label}`, dataset, pipelinesDir: dir })
    )
  )
  try {
    await runtime.runtime()
    const tracer = recordingTracer(records)
    for (let i = 0; i < TRACE_RUNS; i++) {
      const marks: PhaseMarks = {}
      const start = now()
      await runtime.runPromise(
        Pipeline.run(tickSource).pipe(
          Effect.provideService(Progress.Progress, phaseRecorder(marks)),
          Effect.withTracer(tracer)
        )
      )
      records.push({ what: "run (wall)", ms: now() - start })
      const d = phaseDurations(marks)
      records.push(
        { what: "phase restore", ms: d.restore },
        { what: "phase extract", ms: d.extract },
        { what: "phase commit", ms: d.commit }
      )
    }
  } finally {
    await runtime.dispose()
  }
  log(`  ${label}: wall-time breakdown of ${TRACE_RUNS} traced runs (per run: total, count, median of one)`)
  log(summarize(records, TRACE_RUNS))
}

export const commitOverhead: Benchmark = {
  id: "commit-overhead",
  figures: ["commit overhead sqlite", "commit overhead postgres"],
  run: async (options) => {
    const figures: Array<Figure> = []
    options.log(
      `commit overhead: ${RUNS} runs (after ${WARMUP} warm-up runs) of a pipeline that changes one state key and loads no rows`
    )
    if (options.wants("commit overhead sqlite")) {
      const dir = makeTempDir("commit-sqlite")
      try {
        const dataset = "bench_commit"
        figures.push(
          ...(await measure(
            "sqlite",
            Destination.sqlite({ directory: dir }),
            dataset,
            dir,
            async () => {
              const db = new openSqlite(NodePath.join(dir, `${dataset}.sqlite`))
              db.exec("CREATE TABLE IF NOT EXISTS bench_baseline (id INTEGER, at TEXT)")
              const insert = db.prepare("INSERT INTO bench_baseline VALUES (?, ?)")
              const tx = db.transaction((i: number) => {
                insert.run(i, new Date().toISOString())
              })
              return {
                run: async (i) => tx(i),
                close: async () => db.close()
              }
            },
            options
          ))
        )
      } finally {
        removeDir(dir)
      }
    }
    if (options.wants("commit overhead postgres")) {
      const url = options.postgresUrl
      if (url === undefined) return figures
      const dir = makeTempDir("commit-pg")
      const dataset = freshName("bench_commit")
      try {
        figures.push(
          ...(await measure(
            "postgres",
            Destination.postgres({ url: Redacted.make(url) }),
            dataset,
            dir,
            async () => {
              const client = await connect(url)
              await client.query(`CREATE TABLE "${dataset}".bench_baseline (id bigint, at timestamptz)`)
              return {
                run: async (i) => {
                  await client.query("BEGIN")
                  await client.query(`INSERT INTO "${dataset}".bench_baseline VALUES ($1, $2)`, [i, new Date()])
                  await client.query("COMMIT")
                },
                close: () => client.end()
              }
            },
            options
          ))
        )
      } finally {
        await dropSchema(url, dataset)
        removeDir(dir)
      }
    }
    return figures
  }
}
