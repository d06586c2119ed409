/**
 * sqlite load: n rows through `Pipeline.run` into the embedded destination (a SQLite file in a temp
 * dir), against raw better-sqlite3: one prepared INSERT in one transaction.
 */
import * as NodePath from "node:path"
import { Effect } from "effect"
import { Destination, Pipeline, Progress } from "../src/index.js"
import { type Benchmark, makeTempDir, openSqlite, removeDir } from "./lib/env.js"
import { logPhases, type PhaseMarks, phaseRecorder, rowsSource } from "./lib/pipestate.js"
import { rows, SQLITE_COLUMNS, sqliteValues } from "./lib/rows.js"
import { alternate, median, timed } from "./lib/stats.js"

const countRows = (file: string, table: string): number => {
  const db = new openSqlite(file)
  try {
    return (db.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n
  } finally {
    db.close()
  }
}

const expectRows = (what: string, found: number, expected: number): void => {
  if (found !== expected) throw new Error(`${what}: loaded ${found} rows, expected ${expected}`)
}

export const sqliteLoad: Benchmark = {
  id: "sqlite-load",
  figures: ["sqlite load"],
  run: async (options) => {
    const n = Math.round(1_000_000 * options.scale)

    const pipestate = async (): Promise<number> => {
      const dir = makeTempDir("sqlite-load")
      try {
        const marks: PhaseMarks = {}
        const { ms, value: summary } = await timed(() =>
          Effect.runPromise(
            Pipeline.run(rowsSource(n)).pipe(
              Effect.provideService(Progress.Progress, phaseRecorder(marks)),
              Effect.provide(Pipeline.layerNode({ name: "bench_sqlite_load", dataset: "bench", pipelinesDir: dir })),
              Effect.provide(Destination.sqlite({ directory: dir }))
            )
          )
        )
        expectRows("pipestate (summary)", summary.tables.players ?? 0, n)
        logPhases(options.log, ms, marks)
        expectRows("pipestate", countRows(NodePath.join(dir, "bench.sqlite"), "players"), n)
        return ms
      } finally {
        removeDir(dir)
      }
    }

    const baseline = async (): Promise<number> => {
      const dir = makeTempDir("sqlite-raw")
      const file = NodePath.join(dir, "bench.sqlite")
      try {
        const { ms } = await timed(() => {
          const db = new openSqlite(file)
          try {
            db.pragma("journal_mode = WAL") // as @effect/sql-sqlite-node opens it
            db.exec(`CREATE TABLE players (${SQLITE_COLUMNS})`)
            const insert = db.prepare(`INSERT INTO players VALUES (${Array(10).fill("?").join(", ")})`)
            db.transaction(() => {
              for (const row of rows(n)) insert.run(...sqliteValues(row))
            })()
          } finally {
            db.close()
          }
        })
        expectRows("baseline", countRows(file, "players"), n)
        return ms
      } finally {
        removeDir(dir)
      }
    }

    options.log(`sqlite load: ${n.toLocaleString("en-US")} rows x 10 columns, ${options.reps} repetitions`)
    const times = await alternate(options, baseline, pipestate)
    const value = n / (median(times.pipestate) / 1000)
    const base = n / (median(times.baseline) / 1000)
    return [
      {
        name: "sqlite load",
        value,
        unit: "rows/s",
        baseline: base,
        ratio: value / base,
        target: { kind: "ratio>=", value: 0.8 },
        note: "baseline: better-sqlite3, one prepared INSERT in one transaction (WAL, as pipestate opens it)"
      }
    ]
  }
}
