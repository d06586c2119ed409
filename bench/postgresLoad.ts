/**
 * postgres load: n rows through `Pipeline.run` (append) into a fresh dataset, against COPY FROM STDIN
 * of the same rows as CSV built in JS (pg-copy-streams), one transaction each.
 */
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { Effect, ManagedRuntime, Redacted } from "effect"
import { from as copyFrom } from "pg-copy-streams"
import { Destination, Pipeline, Progress } from "../src/index.js"
import { type Benchmark, connect, dropSchema, freshName, makeTempDir, removeDir, withClient } from "./lib/env.js"
import { logPhases, type PhaseMarks, phaseRecorder, rowsSource } from "./lib/pipestate.js"
import { csvChunks, PG_COLUMNS, rows } from "./lib/rows.js"
import { alternate, median, timed } from "./lib/stats.js"

const countRows = (url: string, schema: string, table: string): Promise<number> =>
  withClient(url, async (client) => {
    const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}"."${table}"`)
    return Number(result.rows[0]?.n)
  })

const expectRows = (what: string, found: number, expected: number): void => {
  if (found !== expected) throw new Error(`${what}: loaded ${found} rows, expected ${expected}`)
}

export const postgresLoad: Benchmark = {
  id: "postgres-load",
  figures: ["postgres load"],
  needsPostgres: true,
  run: async (options) => {
    const url = options.postgresUrl!
    const n = Math.round(1_000_000 * options.scale)
    const runtime = ManagedRuntime.make(Destination.postgres({ url: Redacted.make(url) }))
    try {
      await runtime.runtime() // connect before the first timed run

      const pipestate = async (): Promise<number> => {
        const dataset = freshName("bench_pg_load")
        const dir = makeTempDir("pg-load")
        try {
          const marks: PhaseMarks = {}
          const { ms, value: summary } = await timed(() =>
            runtime.runPromise(
              Pipeline.run(rowsSource(n)).pipe(
                Effect.provideService(Progress.Progress, phaseRecorder(marks)),
                Effect.provide(Pipeline.layerNode({ name: "bench_pg_load", dataset, pipelinesDir: dir }))
              )
            )
          )
          expectRows("pipestate (summary)", summary.tables.players ?? 0, n)
          logPhases(options.log, ms, marks)
          expectRows("pipestate", await countRows(url, dataset, "players"), n)
          return ms
        } finally {
          await dropSchema(url, dataset)
          removeDir(dir)
        }
      }

      const baseline = async (): Promise<number> => {
        const schema = freshName("bench_pg_copy")
        const client = await connect(url)
        try {
          const { ms } = await timed(async () => {
            await client.query(`CREATE SCHEMA "${schema}"`)
            await client.query("BEGIN")
            await client.query(`CREATE TABLE "${schema}".players (${PG_COLUMNS})`)
            await pipeline(
              Readable.from(csvChunks(rows(n), 1000)),
              client.query(copyFrom(`COPY "${schema}".players FROM STDIN WITH (FORMAT csv)`))
            )
            await client.query("COMMIT")
          })
          expectRows("baseline", await countRows(url, schema, "players"), n)
          return ms
        } finally {
          await client.end()
          await dropSchema(url, schema)
        }
      }

      options.log(`postgres load: ${n.toLocaleString("en-US")} rows x 10 columns, ${options.reps} repetitions`)
      const times = await alternate(options, baseline, pipestate)
      const value = n / (median(times.pipestate) / 1000)
      const base = n / (median(times.baseline) / 1000)
      return [
        {
          name: "postgres load",
          value,
          unit: "rows/s",
          baseline: base,
          ratio: value / base,
          target: { kind: "ratio>=", value: 0.5 },
          note: "baseline: COPY FROM STDIN (pg-copy-streams), CSV built in JS as rows are pulled, one transaction"
        }
      ]
    } finally {
      await runtime.dispose()
    }
  }
}
