/**
 * postgres load: n rows through `Pipeline.run` (append) into a fresh dataset, against COPY FROM STDIN
 * of the same rows as CSV built in JS (pg-copy-streams), one transaction each; and against the
 * physical limit, `psql \copy` of the same rows from a CSV file written beforehand (untimed).
 */
import { spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
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
  figures: ["postgres load", "postgres load vs psql"],
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

      // psql \copy of the same rows from a file: no JS on the loading side at all
      const csvDir = makeTempDir("pg-load-csv")
      const csvFile = NodePath.join(csvDir, "players.csv")
      const psqlCopy = async (): Promise<number> => {
        const schema = freshName("bench_pg_psql")
        try {
          const script = [
            "\\set ON_ERROR_STOP on",
            "BEGIN;",
            `CREATE SCHEMA "${schema}";`,
            `CREATE TABLE "${schema}".players (${PG_COLUMNS});`,
            `\\copy "${schema}".players FROM '${csvFile}' WITH (FORMAT csv)`,
            "COMMIT;"
          ].join("\n")
          const { ms, value: result } = await timed(async () =>
            spawnSync("psql", ["-X", "-q", url], { input: script, encoding: "utf8" })
          )
          if (result.status !== 0) throw new Error(`psql \\copy failed: ${result.error?.message ?? result.stderr}`)
          expectRows("psql \\copy", await countRows(url, schema, "players"), n)
          return ms
        } finally {
          await dropSchema(url, schema)
        }
      }

      options.log(`postgres load: ${n.toLocaleString("en-US")} rows x 10 columns, ${options.reps} repetitions`)
      const times = await alternate(options, baseline, pipestate)
      const value = n / (median(times.pipestate) / 1000)
      const base = n / (median(times.baseline) / 1000)
      let psql: number | null = null
      if (options.side !== "pipestate" && spawnSync("psql", ["--version"]).status === 0) {
        try {
          const out = NodeFs.createWriteStream(csvFile)
          await pipeline(Readable.from(csvChunks(rows(n), 1000)), out)
          const psqlTimes: Array<number> = []
          for (let rep = 0; rep < options.reps; rep++) {
            const ms = await psqlCopy()
            psqlTimes.push(ms)
            options.log(`  rep ${rep + 1}/${options.reps} psql copy ${ms.toFixed(1)} ms`)
          }
          psql = n / (median(psqlTimes) / 1000)
        } finally {
          removeDir(csvDir)
        }
      } else {
        removeDir(csvDir)
      }
      return [
        {
          name: "postgres load vs psql",
          value: options.side === "baseline" ? null : value,
          unit: "rows/s",
          baseline: psql,
          ratio: psql === null || options.side === "baseline" ? null : value / psql,
          target: { kind: "ratio>=", value: 0.5 },
          note: "baseline: psql \\copy of the same rows from a CSV file (the physical limit; psql on PATH)"
        },
        {
          name: "postgres load",
          value,
          unit: "rows/s",
          baseline: base,
          ratio: value / base,
          // issue 11: at least as fast as the JS COPY baseline
          target: { kind: "ratio>=", value: 1.0 },
          note: "baseline: COPY FROM STDIN (pg-copy-streams), CSV built in JS as rows are pulled, one transaction"
        }
      ]
    } finally {
      await runtime.dispose()
    }
  }
}
