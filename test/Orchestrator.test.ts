/**
 * The in-process orchestrator: every group of a decomposed source runs at once and commits (their
 * changes merge); each group's commit records (run id, group, summary) in the same transaction;
 * a rerun of the run id, or a group run again after a crash, returns the recorded summary
 * without loading again; a group whose commit fails records nothing.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { resourceNames, shop } from "../examples/distributed/shop.js"
import { Destination } from "../src/destination/Destination.js"
import * as Orchestrator from "../src/orchestrator/Orchestrator.js"
import * as Source from "../src/pipeline/Source.js"
import { tempDir, wrapDestination } from "./helpers.js"
import { freshDataset, postgresAvailable, query, testDestination } from "./postgres.js"
import * as DestinationModule from "../src/destination/index.js"

const job = (dataset: string, pipelinesDir: string, rows: number) => ({
  pipeline: { name: "shop_pipeline", dataset, pipelinesDir },
  groups: Either.getOrThrow(Source.decompose(shop({ resources: 4, rows })))
})

const count = (dataset: string, table: string) =>
  Effect.promise(() => query<{ n: number }>(`SELECT count(*)::int AS n FROM "${dataset}"."${table}"`)).pipe(
    Effect.map((rows) => rows[0]!.n)
  )

describe.skipIf(!postgresAvailable)("Orchestrator (in process, PostgreSQL)", () => {
  it.scopedLive("runs every group, records each with its commit, and a rerun of the run id loads nothing", () =>
    Effect.gen(function* () {
      const dataset = yield* freshDataset("orch")
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(testDestination())
      const layer = Orchestrator.layerInProcess(job(dataset, dir, 500), { runner: "here" }).pipe(
        Layer.provide(Layer.merge(destination, NodeContext.layer))
      )
      const first = yield* Orchestrator.run({ runId: "run-1" }).pipe(Effect.provide(layer))
      expect(first.map((r) => [r.group, r.recorded, r.runner, r.summary.tables])).toEqual(
        resourceNames(4).map((name) => [name, false, "here", { [name]: 500 }])
      )
      const records = yield* Effect.promise(() =>
        query<{ run_id: string; group_name: string; load_id: string }>(
          `SELECT g.run_id, g.group_name, g.load_id FROM "${dataset}"._pipestate_group_runs g ORDER BY g.group_name`
        )
      )
      expect(records.map((r) => [r.run_id, r.group_name])).toEqual(resourceNames(4).map((n) => ["run-1", n]))
      // each record names the load of its group's rows
      for (const r of records) {
        const rows = yield* Effect.promise(() =>
          query<{ n: number }>(
            `SELECT count(*)::int AS n FROM "${dataset}"."${r.group_name}" WHERE _dlt_load_id = $1`,
            [r.load_id]
          )
        )
        expect(rows[0]!.n).toBe(500)
      }
      const loadsBefore = yield* count(dataset, "_dlt_loads")

      // the same run id again: every group returns its record, nothing is loaded
      const again = yield* Orchestrator.run({ runId: "run-1" }).pipe(Effect.provide(layer))
      expect(again.map((r) => r.recorded)).toEqual([true, true, true, true])
      expect(again.map((r) => r.summary)).toEqual(first.map((r) => r.summary))
      expect(yield* count(dataset, "_dlt_loads")).toBe(loadsBefore)
      for (const name of resourceNames(4)) expect(yield* count(dataset, name)).toBe(500)

      // a new run id runs again (and, the resources being incremental, loads no new rows)
      const next = yield* Orchestrator.run({ runId: "run-2", groups: ["r2"] }).pipe(Effect.provide(layer))
      expect(next.map((r) => [r.group, r.recorded, r.summary.tables])).toEqual([["r2", false, { r2: 0 }]])
      expect(yield* count(dataset, "_pipestate_group_runs")).toBe(5)
    })
  )

  it.scopedLive(
    "a group run again after its commit (a crash before the reply) returns the record, loading nothing",
    () =>
      Effect.gen(function* () {
        const dataset = yield* freshDataset("orch")
        const dir = yield* tempDir()
        const destination = yield* Layer.memoize(testDestination())
        const theJob = job(dataset, dir, 300)
        const services = Layer.merge(destination, NodeContext.layer)
        const once = yield* Orchestrator.runGroup(theJob, "run-x", "r3", "runner-a").pipe(Effect.provide(services))
        expect(once.recorded).toBe(false)
        const replay = yield* Orchestrator.runGroup(theJob, "run-x", "r3", "runner-b").pipe(Effect.provide(services))
        expect(replay).toEqual({ ...once, recorded: true })
        expect(yield* count(dataset, "r3")).toBe(300)
        expect(yield* count(dataset, "_dlt_loads")).toBe(1)
      })
  )

  it.scopedLive("a group whose commit fails records nothing and fails with GroupFailed; the rerun loads it", () =>
    Effect.gen(function* () {
      const dataset = yield* freshDataset("orch")
      const dir = yield* tempDir()
      const base = yield* Layer.memoize(testDestination())
      const failing = wrapDestination((d) => ({
        ...d,
        transaction: (target, options, body) =>
          d.transaction(target, options, (tx) =>
            body({
              ...tx,
              insertGroupRun: (row) =>
                Effect.zipRight(
                  tx.insertGroupRun!(row),
                  Effect.fail(
                    new DestinationModule.DestinationError({ destination: d.name, operation: "test", reason: "boom" })
                  )
                )
            })
          )
      }))(base)
      const theJob = job(dataset, dir, 200)
      const error = yield* Effect.flip(
        Orchestrator.runGroup(theJob, "run-f", "r1", "here").pipe(
          Effect.provide(Layer.merge(failing, NodeContext.layer))
        )
      )
      expect(error._tag).toBe("GroupFailed")
      expect(error.message).toContain("boom")
      const tables = yield* Effect.promise(() =>
        query("SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'r1'", [
          dataset
        ])
      )
      expect(tables).toHaveLength(0)
      const ok = yield* Orchestrator.runGroup(theJob, "run-f", "r1", "here").pipe(
        Effect.provide(Layer.merge(base, NodeContext.layer))
      )
      expect([ok.recorded, ok.summary.tables]).toEqual([false, { r1: 200 }])
    })
  )

  it.effect("the memory destination records group runs too", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const theJob = job("mem", dir, 50)
      const services = Layer.merge(DestinationModule.memory(), NodeContext.layer)
      const results = yield* Effect.gen(function* () {
        const first = yield* Orchestrator.runGroup(theJob, "m", "r1", "here")
        const second = yield* Orchestrator.runGroup(theJob, "m", "r1", "here")
        const d = yield* Destination
        const stored = yield* d.readGroupRun!({ dataset: "mem", pipelineDir: dir }, "shop_pipeline", "m", "r1")
        return { first, second, stored }
      }).pipe(Effect.provide(services))
      expect(results.first.recorded).toBe(false)
      expect(results.second).toEqual({ ...results.first, recorded: true })
      expect(results.stored._tag).toBe("Some")
    }).pipe(Effect.scoped)
  )
})
