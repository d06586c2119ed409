/**
 * distributed: 8 resources x 100,000 rows (10,000 with --quick) of the example's shop source into
 * one PostgreSQL dataset, three ways, each timed from the start of the run to the last commit:
 *
 * - serial: one process, one `Pipeline.run` of the whole source with concurrency 1 (the baseline);
 * - concurrent: one process, the in-process `Orchestrator` (8 groups at once, 8 merged commits);
 * - 2 runners: two runner processes and a driver on loopback (`ClusterOrchestrator`); the runners
 *   start (and their shards settle) before the clock does; the driver's own run time is taken.
 *
 * ratio = rows/s of the way / rows/s of serial. Every way checks count(*) = count(distinct id).
 */
import { spawn } from "node:child_process"
import * as NodePath from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { NodeContext } from "@effect/platform-node"
import { Effect, Either, Layer, ManagedRuntime, Redacted } from "effect"
import { shop } from "../examples/distributed/shop.js"
import { Destination, Orchestrator, Pipeline, Source } from "../src/index.js"
import { type Benchmark, dropSchema, freshName, makeTempDir, removeDir, withClient } from "./lib/env.js"
import { timed } from "./lib/stats.js"

const RESOURCES = 8
const here = NodePath.dirname(fileURLToPath(import.meta.url))

const check = (url: string, dataset: string, rows: number): Promise<void> =>
  withClient(url, async (client) => {
    for (let i = 1; i <= RESOURCES; i++) {
      const result = await client.query<{ n: number; ids: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM "${dataset}"."r${i}"`
      )
      const { n, ids } = result.rows[0]!
      if (n !== rows || ids !== rows)
        throw new Error(`${dataset}.r${i}: ${n} rows, ${ids} distinct ids, expected ${rows}`)
    }
  })

interface Proc {
  readonly waitFor: (prefix: string, ms: number) => Promise<string>
  readonly stop: () => Promise<void>
}

const start = (script: string, args: ReadonlyArray<string>): Proc => {
  const child = spawn(process.execPath, ["--import", "tsx", NodePath.join(here, "..", script), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" }
  })
  const lines: Array<string> = []
  let stderr = ""
  createInterface({ input: child.stdout! }).on("line", (line) => lines.push(line))
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString("utf8")
  })
  const closed = new Promise<void>((resolve) => child.on("close", () => resolve()))
  return {
    waitFor: (prefix, ms) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + ms
        const poll = setInterval(() => {
          const line = lines.find((l) => l.startsWith(prefix))
          if (line !== undefined || child.exitCode !== null || Date.now() > deadline) {
            clearInterval(poll)
            if (line !== undefined) resolve(line)
            else reject(new Error(`${script}: no "${prefix}" (exit ${child.exitCode}); stderr: ${stderr.slice(-1500)}`))
          }
        }, 50)
      }),
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM")
      await closed
    }
  }
}

export const distributed: Benchmark = {
  id: "distributed",
  figures: ["distributed serial", "distributed concurrent", "distributed 2 runners"],
  needsPostgres: true,
  run: async (options) => {
    const url = options.postgresUrl!
    const rows = Math.round(100_000 * options.scale)
    const total = rows * RESOURCES
    const source = shop({ resources: RESOURCES, rows })
    const runtime = ManagedRuntime.make(
      Layer.merge(Destination.postgres({ url: Redacted.make(url) }), NodeContext.layer)
    )
    options.log(
      `distributed: ${RESOURCES} resources x ${rows.toLocaleString("en-US")} rows, one dataset, 1 repetition each`
    )
    const measured: Record<string, number> = {}
    try {
      await runtime.runtime()
      const way = async (name: string, run: (dataset: string, dir: string) => Promise<number | undefined>) => {
        if (!options.wants(`distributed ${name}`) && name !== "serial") return
        const dataset = freshName(`bench_dist_${name.replace(/\W/g, "")}`)
        const dir = makeTempDir("dist")
        try {
          const { ms, value } = await timed(() => run(dataset, dir))
          const elapsed = value ?? ms
          await check(url, dataset, rows)
          measured[name] = total / (elapsed / 1000)
          options.log(`  ${name}: ${(elapsed / 1000).toFixed(1)} s`)
        } finally {
          await dropSchema(url, dataset)
          removeDir(dir)
        }
      }

      await way("serial", async (dataset, dir) => {
        await runtime.runPromise(
          Pipeline.run(source).pipe(
            Effect.provide(Pipeline.layerNode({ name: "bench_dist", dataset, pipelinesDir: dir, concurrency: 1 }))
          )
        )
        return undefined
      })

      await way("concurrent", async (dataset, dir) => {
        const job = {
          pipeline: { name: "bench_dist", dataset, pipelinesDir: dir },
          groups: Either.getOrThrow(Source.decompose(source))
        }
        await runtime.runPromise(
          Orchestrator.run({ runId: "bench" }).pipe(Effect.provide(Orchestrator.layerInProcess(job)))
        )
        return undefined
      })

      const schema = freshName("bench_cluster")
      try {
        await way("2 runners", async (dataset, dir) => {
          const common = [
            `--url=${url}`,
            `--schema=${schema}`,
            `--dataset=${dataset}`,
            `--resources=${RESOURCES}`,
            `--rows=${rows}`
          ]
          const runners: Array<Proc> = []
          try {
            for (const port of [34531, 34532]) {
              const runner = start("examples/distributed/runner.ts", [
                ...common,
                `--port=${port}`,
                `--dir=${NodePath.join(dir, String(port))}`
              ])
              runners.push(runner)
              await runner.waitFor("RUNNER READY", 180_000)
            }
            // the second runner takes over half the shards from the first: let that settle (lock
            // refreshes, assignment refreshes every 3 s) before the clock starts
            await new Promise((resolve) => setTimeout(resolve, 15_000))
            const driver = start("examples/distributed/driver.ts", [...common, "--run-id=bench", "--timeout-s=900"])
            const done = await driver.waitFor("DONE", 950_000)
            await driver.stop()
            return Number(done.split(" ")[1])
          } finally {
            await Promise.all(runners.map((r) => r.stop()))
          }
        })
      } finally {
        await dropSchema(url, schema)
      }
    } finally {
      await runtime.dispose()
    }
    const serial = measured.serial ?? null
    const figure = (name: string, note: string) => {
      const value = measured[name] ?? null
      return {
        name: `distributed ${name}`,
        value,
        unit: "rows/s",
        baseline: serial,
        ratio: value === null || serial === null ? null : value / serial,
        note
      }
    }
    return [
      figure("serial", "one Pipeline.run of the 8-resource source, concurrency 1, one commit (the baseline)"),
      figure("concurrent", "in-process Orchestrator: 8 groups at once in one process, 8 merged commits"),
      figure(
        "2 runners",
        "ClusterOrchestrator: 2 runner processes + a driver on loopback, runners started before the clock"
      )
    ].filter((f) => options.wants(f.name))
  }
}
