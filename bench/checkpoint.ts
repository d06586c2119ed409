/**
 * checkpoint overhead: 1M rows (100 pages of 10,000, the next page recorded in the resource state
 * before each page) into the embedded SQLite destination, committing a checkpoint every 100,000
 * rows, against the same run without checkpoints (one commit at the end). Target: ≥ 0.9x.
 */
import * as NodePath from "node:path"
import { Effect, Schema, Stream } from "effect"
import { Destination, Pipeline, Resource, ResourceState, Source } from "../src/index.js"
import type { CheckpointOptions } from "../src/internal/pipeline/Checkpoint.js"
import { type Benchmark, makeTempDir, openSqlite, removeDir } from "./lib/env.js"
import { makeRow } from "./lib/rows.js"
import { alternate, median, timed } from "./lib/stats.js"

const PAGE = 10_000

interface Timing {
  readonly ms: number
  /** CPU time of this process (user + system) during the run */
  readonly cpuMs: number
}

const show = (t: Timing) => `${t.ms.toFixed(1)} ms (cpu ${t.cpuMs.toFixed(0)} ms)`
const Next = ResourceState.key("next", Schema.Number, () => 0)

const pagedSource = (n: number) =>
  Source.make({
    name: "bench",
    resources: [
      Resource.make(
        { name: "players", writeDisposition: "append" },
        Stream.unwrap(
          Effect.map(Next.get, (start) =>
            Stream.range(start, Math.ceil(n / PAGE) - 1).pipe(
              Stream.flatMap((page) =>
                Stream.fromEffect(Next.set(page + 1)).pipe(
                  Stream.drain,
                  Stream.concat(
                    Stream.fromIterable(
                      Array.from({ length: Math.min(PAGE, n - page * PAGE) }, (_, k) => makeRow(page * PAGE + k))
                    )
                  )
                )
              )
            )
          )
        )
      )
    ]
  })

const countRows = (file: string): number => {
  const db = new openSqlite(file)
  try {
    return (db.prepare(`SELECT count(*) AS n FROM "players"`).get() as { n: number }).n
  } finally {
    db.close()
  }
}

export const checkpoint: Benchmark = {
  id: "checkpoint",
  figures: ["checkpoint overhead"],
  run: async (options) => {
    const n = Math.round(1_000_000 * options.scale)
    const every = Math.round(100_000 * options.scale)

    const load = (checkpoint: CheckpointOptions | undefined) => async (): Promise<Timing> => {
      const dir = makeTempDir("checkpoint")
      try {
        const cpu = process.cpuUsage()
        const { ms, value: summary } = await timed(() =>
          Effect.runPromise(
            Pipeline.run(pagedSource(n)).pipe(
              Effect.provide(
                Pipeline.layerNode({
                  name: "bench_checkpoint",
                  dataset: "bench",
                  pipelinesDir: dir,
                  ...(checkpoint === undefined ? {} : { checkpoint })
                })
              ),
              Effect.provide(Destination.sqlite({ directory: dir }))
            )
          )
        )
        const loaded = countRows(NodePath.join(dir, "bench.sqlite"))
        if (loaded !== n) throw new Error(`loaded ${loaded} rows, expected ${n}`)
        if (checkpoint !== undefined && (summary.checkpoints?.length ?? 0) < Math.floor(n / every) - 1) {
          throw new Error(`expected about ${n / every} checkpoints, got ${summary.checkpoints?.length ?? 0}`)
        }
        const used = process.cpuUsage(cpu)
        return { ms, cpuMs: (used.user + used.system) / 1000 }
      } finally {
        removeDir(dir)
      }
    }

    options.log(
      `checkpoint overhead: ${n.toLocaleString("en-US")} rows, checkpoints every ${every.toLocaleString("en-US")} rows vs none, ${options.reps} repetitions`
    )
    const times = await alternate(options, load(undefined), load({ rows: every }), show)
    const value = n / (median(times.pipestate.map((t) => t.ms)) / 1000)
    const base = n / (median(times.baseline.map((t) => t.ms)) / 1000)
    const cpuValue = n / (median(times.pipestate.map((t) => t.cpuMs)) / 1000)
    const cpuBase = n / (median(times.baseline.map((t) => t.cpuMs)) / 1000)
    return [
      {
        name: "checkpoint overhead",
        value,
        unit: "rows/s",
        baseline: base,
        ratio: value / base,
        target: { kind: "ratio>=", value: 0.9 },
        note: `baseline: the same run (SQLite, pages of ${PAGE.toLocaleString("en-US")} rows with state per page) without checkpoints`
      },
      {
        // the same runs by the CPU time of this process: the work checkpoints add, without the
        // waits for the disk (each checkpoint is a commit: a WAL checkpoint and its fsyncs)
        name: "checkpoint overhead cpu",
        value: cpuValue,
        unit: "rows/cpu-s",
        baseline: cpuBase,
        ratio: cpuValue / cpuBase
      }
    ]
  }
}
