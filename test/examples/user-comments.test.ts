import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { config, demo } from "../../examples/user-comments/demo.js"
import { comments, seedComments } from "../../examples/user-comments/pipeline.js"
import { Destination, Pipeline } from "../../src/index.js"
import { tempDir } from "../helpers.js"
import { freshDataset, postgresAvailable, query, TEST_POSTGRES_URL, testDestination } from "../postgres.js"
import { runExample } from "./runExample.js"

/** the user_comments rows as `user:id:value`, sorted */
const loadedComments = Effect.gen(function* () {
  const pipeline = yield* Pipeline.Pipeline
  const destination = yield* Destination.Destination
  const dataset = yield* destination.dataset({ dataset: pipeline.config.dataset, pipelineDir: pipeline.workingDir.dir })
  const rows = yield* dataset.rows("user_comments")
  return rows.map((r) => `${String(r.user_id)}:${Number(r._id)}:${String(r.value)}`).sort()
})

/** runs on one destination: the first run loads, the second finds the newest id in the destination */
const scenario = Effect.gen(function* () {
  const [first, second] = yield* demo("alice")
  expect(first?.firstRun).toBe(true)
  expect(first?.tables).toEqual({ user_comments: 3 })
  expect(second?.firstRun).toBe(false)
  expect(second?.tables).toEqual({ user_comments: 0 })

  // the newest id is looked up per user: bob's comments all load, though alice's ids are as high
  const bob = yield* Pipeline.run(comments("bob"))
  expect(bob.tables).toEqual({ user_comments: 3 })

  // new comments of alice: only those past her newest loaded id
  const more = yield* Pipeline.run(comments("alice", [...seedComments, { _id: 4, value: "D" }, { _id: 5, value: "E" }]))
  expect(more.tables).toEqual({ user_comments: 2 })

  expect(yield* loadedComments).toEqual([
    "alice:1:A",
    "alice:2:B",
    "alice:3:C",
    "alice:4:D",
    "alice:5:E",
    "bob:1:A",
    "bob:2:B",
    "bob:3:C"
  ])
})

describe("examples/user-comments", () => {
  it.scopedLive("SQLite: a second run loads nothing new; the last id comes from the destination", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* scenario.pipe(
        Effect.provide(Layer.mergeAll(Pipeline.layerNode({ ...config, pipelinesDir: dir }), Destination.sqlite()))
      )
    })
  )

  it.scopedLive("npm run example:user-comments", () =>
    Effect.gen(function* () {
      const out = yield* runExample("user-comments", { env: { PIPESTATE_PIPELINES_DIR: yield* tempDir() } })
      expect(out).toContain("run 1: user_comments: 3 rows for alice")
      expect(out).toContain("run 2: user_comments: 0 rows for alice")
    })
  )
})

describe.skipIf(!postgresAvailable)("examples/user-comments on PostgreSQL", () => {
  it.scopedLive("a second run loads nothing new; the last id comes from the destination", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset("comments")
      yield* scenario.pipe(
        Effect.provide(Layer.mergeAll(Pipeline.layerNode({ ...config, dataset, pipelinesDir: dir }), testDestination()))
      )
    })
  )

  it.scopedLive("npm run example:user-comments -- --destination postgres", () =>
    Effect.gen(function* () {
      const dataset = yield* freshDataset("comments")
      const out = yield* runExample("user-comments", {
        args: ["--destination", "postgres", "--dataset", dataset],
        env: { PIPESTATE_PIPELINES_DIR: yield* tempDir(), PIPESTATE_POSTGRES_URL: TEST_POSTGRES_URL }
      })
      expect(out).toContain("run 1: user_comments: 3 rows for alice")
      expect(out).toContain("run 2: user_comments: 0 rows for alice")
      const rows = yield* Effect.promise(() => query(`SELECT _id FROM "${dataset}".user_comments ORDER BY _id`))
      expect(rows.map((r) => Number(r._id))).toEqual([1, 2, 3])
    })
  )
})
