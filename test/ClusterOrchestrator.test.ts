/**
 * The cluster orchestrator with real processes: 2 runners (@effect/cluster over loopback sockets,
 * storage in a PostgreSQL schema of the test's own) and a driver running 8 groups. One runner is
 * killed with SIGKILL in the middle of a group: every group completes (the killed runner's on the
 * survivor), no row is lost or duplicated, the state matches the data, every group is recorded
 * once; a rerun of the run id loads nothing. Bounded in time (upstream stalls, Effect-TS/effect
 * #8312, would fail it rather than hang), and the processes and the schema are cleaned up.
 */
import * as NodeNet from "node:net"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { resourceNames } from "../examples/distributed/shop.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import { tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, query, TEST_POSTGRES_URL } from "./postgres.js"
import { bundle, type Child, spawnScoped } from "./processes.js"

const RUNNER = await bundle("examples/distributed/runner.ts")
const DRIVER = await bundle("examples/distributed/driver.ts")

const ROWS = 3_000
const GROUPS = resourceNames(8)

const freePort = () =>
  Effect.async<number>((resume) => {
    const server = NodeNet.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resume(Effect.succeed(port)))
    })
  })

const clusterSchema = Effect.acquireRelease(
  Effect.sync(() => `pscl_${process.pid}_${Date.now().toString(36)}`),
  (schema) => Effect.promise(() => query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).pipe(Effect.ignore)
)

const wait = (child: Child, prefix: string, ms: number) => Effect.promise(() => child.waitFor(prefix, ms))

describe.skipIf(!postgresAvailable)("ClusterOrchestrator (2 runner processes, PostgreSQL)", () => {
  it.scopedLive(
    "a runner killed mid-group: every group completes once on the survivor, nothing lost or duplicated; a rerun is a no-op",
    () =>
      Effect.gen(function* () {
        const dataset = yield* freshDataset("cl")
        const schema = yield* clusterSchema
        const dir = yield* tempDir()
        const common = [
          `--url=${TEST_POSTGRES_URL}`,
          `--schema=${schema}`,
          `--dataset=${dataset}`,
          "--resources=8",
          `--rows=${ROWS}`
        ]
        const runnerArgs = (port: number) => [
          ...common,
          `--port=${port}`,
          `--dir=${NodePath.join(dir, String(port))}`,
          "--chunk-size=250",
          "--chunk-delay-ms=400",
          "--lock-expiration-ms=6000"
        ]
        const ports = [yield* freePort(), yield* freePort()]
        const a = yield* spawnScoped(RUNNER, runnerArgs(ports[0]!))
        yield* wait(a, "RUNNER READY", 90_000)
        const b = yield* spawnScoped(RUNNER, runnerArgs(ports[1]!))
        yield* wait(b, "RUNNER READY", 90_000)
        const runners = [a, b]

        const driver = yield* spawnScoped(DRIVER, [...common, "--run-id=kill-run", "--timeout-s=200"])
        // the first group to start: kill its runner while it extracts (12 chunks, 400 ms apart)
        const victim = yield* Effect.promise(() =>
          Promise.race(runners.map((r) => r.waitFor("EXTRACT", 120_000).then(() => r)))
        )
        victim.child.kill("SIGKILL")
        const killedAt = Date.now()
        yield* Effect.promise(() => victim.exited)
        const survivor = victim === a ? b : a
        const survivorName = `127.0.0.1:${victim === a ? ports[1] : ports[0]}`
        const started = (r: Child) => r.lines.filter((l) => l.startsWith("EXTRACT")).map((l) => l.split(" ")[1]!)
        const killedGroups = started(victim)
        expect(killedGroups.length).toBeGreaterThan(0)

        yield* wait(driver, "DONE", 220_000)
        const results = driver.lines
          .filter((l) => l.startsWith("RESULT "))
          .map(
            (l) =>
              JSON.parse(l.slice("RESULT ".length)) as {
                group: string
                runner: string
                summary: { tables: Record<string, number> }
              }
          )
        expect(results.map((r) => r.group)).toEqual(GROUPS)
        for (const group of killedGroups) {
          expect(results.find((r) => r.group === group)?.runner).toBe(survivorName)
        }
        // recovery: from the kill to the survivor starting the first of the killed runner's groups
        const resumedAt = Math.min(
          ...killedGroups.map((g) => {
            const i = survivor.lines.findIndex((l) => l.startsWith(`EXTRACT ${g} `))
            return i < 0 ? Number.POSITIVE_INFINITY : survivor.times[i]!
          })
        )
        console.log(
          `cluster recovery after kill -9: ${((resumedAt - killedAt) / 1000).toFixed(1)} s (groups ${killedGroups.join(", ")} moved to ${survivorName})`
        )

        // nothing lost, nothing duplicated, the state matches the data, every group recorded once
        for (const group of GROUPS) {
          const [facts] = yield* Effect.promise(() =>
            query<{ n: number; ids: number; loads: number }>(
              `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids, count(DISTINCT _dlt_load_id)::int AS loads FROM "${dataset}"."${group}"`
            )
          )
          expect([group, facts]).toEqual([group, { n: ROWS, ids: ROWS, loads: 1 }])
        }
        const [newest] = yield* Effect.promise(() =>
          query<{ state: string }>(
            `SELECT s.state FROM "${dataset}"._dlt_pipeline_state s JOIN "${dataset}"._dlt_loads l ON l.load_id = s._dlt_load_id ORDER BY l.load_id DESC LIMIT 1`
          )
        )
        const slots = PipelineState.getResourceSlots(Either.getOrThrow(StateBlob.decode(newest!.state)), "shop")
        expect(Object.keys(slots).sort()).toEqual([...GROUPS].sort())
        for (const group of GROUPS) expect(slots[group]).toEqual({ last_id: ROWS })
        const records = yield* Effect.promise(() =>
          query<{ group_name: string }>(
            `SELECT group_name FROM "${dataset}"._pipestate_group_runs WHERE run_id = 'kill-run' ORDER BY group_name`
          )
        )
        expect(records.map((r) => r.group_name)).toEqual(GROUPS)
        const loads = yield* Effect.promise(() =>
          query<{ n: number }>(`SELECT count(*)::int AS n FROM "${dataset}"._dlt_loads`)
        )

        // the same run id again: the same results, nothing loaded
        const rerun = yield* spawnScoped(DRIVER, [...common, "--run-id=kill-run", "--timeout-s=120"])
        yield* wait(rerun, "DONE", 150_000)
        expect(rerun.lines.filter((l) => l.startsWith("RESULT "))).toEqual(
          driver.lines.filter((l) => l.startsWith("RESULT "))
        )
        const loadsAfter = yield* Effect.promise(() =>
          query<{ n: number }>(`SELECT count(*)::int AS n FROM "${dataset}"._dlt_loads`)
        )
        expect(loadsAfter).toEqual(loads)
      }),
    420_000
  )
})
