/**
 * The commit transaction's connection terminated by the server in the middle of the commit (after
 * the rows went in, before the state row): the statement fails, and so does the ROLLBACK on the dead
 * connection, which @effect/sql raises as a defect. The run must fail with a typed
 * `DestinationError` — no defect, no raw SqlError — write nothing, and the same destination layer
 * must load every row once on the next run.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Redacted } from "effect"
import pg from "pg"
import * as Postgres from "../../src/destination/postgres.js"
import * as Pipeline from "../../src/pipeline/Pipeline.js"
import { allBatchKeys, makeSource } from "../fixtures/batchSource.js"
import { tempDir, wrapDestination } from "../helpers.js"
import { freshDataset, postgresAvailable, TEST_POSTGRES_URL } from "../postgres.js"
import { datasetFacts, problems, urlWithApplicationName } from "./support.js"

const NAME = "terminated_pipeline"
const BATCHES = 3
const ROWS = 200

describe.skipIf(!postgresAvailable)("fault: the commit's connection terminated mid-commit", () => {
  it.scopedLive("fails with a DestinationError (no defect), writes nothing, and the next run loads once", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("pipestate-terminated-")
      const dataset = yield* freshDataset("fterm")
      const applicationName = `pipestate_term_${dataset}`
      const admin = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new pg.Client({ connectionString: TEST_POSTGRES_URL })
          await client.connect()
          return client
        }),
        (client) => Effect.promise(() => client.end()).pipe(Effect.ignore)
      )
      // the transaction's own connection, between two of its statements
      const terminateTransaction = Effect.promise(() =>
        admin.query<{ killed: boolean }>(
          "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle in transaction'",
          [applicationName]
        )
      ).pipe(Effect.map((result) => result.rows.filter((row) => row.killed).length))
      let terminated = 0
      const base = yield* Layer.memoize(
        Postgres.layer({ url: Redacted.make(urlWithApplicationName(applicationName)), maxConnections: 4 })
      )
      const killing = wrapDestination((d) => ({
        ...d,
        transaction: (target, options, body) =>
          d.transaction(target, options, (tx) =>
            body({
              ...tx,
              insertState: (row) =>
                Effect.zipRight(
                  Effect.flatMap(terminateTransaction, (n) => Effect.sync(() => void (terminated += n))),
                  tx.insertState(row)
                )
            })
          )
      }))(base)
      const run = (upto: number, destination: typeof base) =>
        Pipeline.run(makeSource({ upto, batchesPerEpoch: BATCHES, rowsPerBatch: ROWS, writer: `run-${upto}` })).pipe(
          Effect.provide(Layer.merge(Pipeline.layerNode({ name: NAME, dataset, pipelinesDir: dir }), destination))
        )

      yield* run(0, base)
      const exit = yield* Effect.exit(run(1, killing))
      expect(terminated).toBe(1)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        expect(Option.isNone(Cause.dieOption(exit.cause)), Cause.pretty(exit.cause)).toBe(true)
        const error = Option.getOrUndefined(Cause.failureOption(exit.cause)) as { _tag?: string } | undefined
        expect(error?._tag, Cause.pretty(exit.cause)).toBe("DestinationError")
      }
      const facts = Effect.promise(() => datasetFacts(dataset, NAME))
      expect(problems(yield* facts, allBatchKeys({ upto: 0, batchesPerEpoch: BATCHES }), ROWS)).toEqual([])

      // the same pool: the dead connection is gone, the next run loads the missing rows once
      yield* run(1, base)
      expect(problems(yield* facts, allBatchKeys({ upto: 1, batchesPerEpoch: BATCHES }), ROWS)).toEqual([])
    })
  )
})
