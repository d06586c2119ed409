/**
 * What a SIGKILLed run leaves in its working dir must not outlive the next run. The stale lock file
 * and a half-written state temp file are cleaned up (fault (c) checks them). The load's CSV spool
 * (`<pipeline dir>/load/<load id>/`, as large as the rows it extracted) is removed by a finalizer,
 * which a SIGKILL never runs, and nothing removes it later: every killed run leaks its spool for good.
 *
 * FAILS on the current src/ (WorkingDir.ts `removeDebris` only removes `state.json.*.tmp`): see
 * the report for the proposed fix.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Pipeline from "../../src/pipeline/Pipeline.js"
import { makeSource } from "../fixtures/batchSource.js"
import { tempDir } from "../helpers.js"
import { freshDataset, postgresAvailable, TEST_POSTGRES_URL, testDestination } from "../postgres.js"
import { spawnScoped } from "./support.js"

const NAME = "debris_pipeline"
const BATCHES = 10
const ROWS = 1000

const sizeOf = (path: string): number =>
  NodeFs.statSync(path).isDirectory()
    ? NodeFs.readdirSync(path).reduce((sum, entry) => sum + sizeOf(NodePath.join(path, entry)), 0)
    : NodeFs.statSync(path).size

describe.skipIf(!postgresAvailable)("fault: the debris of a SIGKILLed run", () => {
  it.scopedLive(
    "the next run removes the killed run's lock and its load spool",
    () =>
      Effect.gen(function* () {
        const base = yield* tempDir("pipestate-debris-")
        const dataset = yield* freshDataset("fdebris")
        const pipelineDir = NodePath.join(base, NAME)
        const spool = NodePath.join(pipelineDir, "load")

        const child = yield* spawnScoped({
          url: TEST_POSTGRES_URL,
          dataset,
          dir: base,
          name: NAME,
          upto: 0,
          batches: BATCHES,
          rows: ROWS
        })
        // killed as it starts committing: every row is spooled, nothing is committed
        yield* Effect.promise(() => child.waitFor("PHASE commit", 120_000))
        child.child.kill("SIGKILL")
        expect((yield* Effect.promise(() => child.exited)).signal).toBe("SIGKILL")
        const left = NodeFs.readdirSync(spool)
        expect(left).toHaveLength(1)
        const leaked = sizeOf(spool)
        expect(NodeFs.existsSync(NodePath.join(pipelineDir, ".lock"))).toBe(true)

        const summary = yield* Pipeline.run(
          makeSource({ upto: 0, batchesPerEpoch: BATCHES, rowsPerBatch: ROWS, writer: "next" })
        ).pipe(
          Effect.provide(
            Layer.merge(Pipeline.layerNode({ name: NAME, dataset, pipelinesDir: base }), testDestination())
          )
        )
        expect(summary.tables.events).toBe(BATCHES * ROWS)
        expect(NodeFs.existsSync(NodePath.join(pipelineDir, ".lock"))).toBe(false)
        const still = NodeFs.existsSync(spool) ? NodeFs.readdirSync(spool) : []
        console.log(
          `killed run's spool: ${left.join(", ")} (${leaked} bytes); after the next run: ${still.length === 0 ? "removed" : `still there (${still.join(", ")})`}`
        )
        expect(still).toEqual([])
      }),
    120_000
  )
})
