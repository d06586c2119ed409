/**
 * SQLite's dataset boundaries: a file given by `path` holds one dataset (a use with another fails
 * with a `DestinationError` and shows nothing of the file's dataset), and the groups of an
 * orchestrated run on the default SQLite load into the pipeline's own file.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Either, Exit, Layer, Option, Schema, Stream } from "effect"
import { Destination, Incremental, Orchestrator, Pipeline, Resource, ResourceState, Source } from "../src/index.js"
import { DATASET_TABLE } from "../src/destination/sqlite.js"
import { tempDir } from "./helpers.js"

const events = (total: number) => {
  const seq = Incremental.cursor({ path: "seq", initialValue: 0, primaryKey: "seq" })
  const resource = Resource.make(
    { name: "events" },
    Incremental.stream(seq, (run) => Stream.range(run.startValue, total).pipe(Stream.map((i) => ({ seq: i }))))
  )
  return Source.make({ name: "events_src", resources: [resource] })
}

const runEvents = (
  destination: Layer.Layer<Destination.Destination>,
  pipelinesDir: string,
  dataset: string,
  total: number
) =>
  Pipeline.run(events(total)).pipe(
    Effect.provide(Pipeline.layer({ name: "px", dataset, pipelinesDir })),
    Effect.provide(destination),
    Effect.provide(NodeContext.layer)
  )

const failureOf = <A, E>(exit: Exit.Exit<A, E>): unknown => {
  expect(Exit.isFailure(exit)).toBe(true)
  return Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
}

describe("Destination.sqlite({ path }): one dataset per file", () => {
  it.scopedLive("records the dataset of the first commit and refuses another dataset, reads included", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const file = NodePath.join(dir, "one.sqlite")
      const destination = Destination.sqlite({ path: file })

      const first = yield* runEvents(destination, dir, "x_ds", 10)
      expect(first.tables).toEqual({ events: 11 }) // seq 0..10

      // the same pipeline switched to another dataset: refused before anything is read or written
      const other = yield* Effect.exit(runEvents(destination, dir, "y_ds", 10))
      const error = failureOf(other) as { _tag: string; message: string }
      expect(error._tag).toBe("DestinationError")
      expect(error.message).toContain(`the file ${file} holds dataset x_ds`)
      expect(error.message).toContain("`directory`")

      // reads with the other dataset do not present x_ds's state or rows as y_ds's
      const target = { dataset: "y_ds", pipelineDir: NodePath.join(dir, "px") }
      const reads = yield* Effect.gen(function* () {
        const d = yield* Destination.Destination
        return [
          yield* Effect.exit(Effect.asVoid(d.stateRows(target, "px", 10))),
          yield* Effect.exit(Effect.asVoid(d.readState(target, "px", first.loadId ?? ""))),
          yield* Effect.exit(Effect.asVoid(d.datasetExists(target))),
          yield* Effect.exit(Effect.asVoid(d.dataset(target))),
          yield* Effect.exit(d.dropDataset(target))
        ]
      }).pipe(Effect.provide(destination))
      for (const exit of reads) expect((failureOf(exit) as { _tag: string })._tag).toBe("DestinationError")

      // the file's own dataset goes on from its state
      const again = yield* runEvents(destination, dir, "x_ds", 15)
      expect(again.tables).toEqual({ events: 5 })
      const names = yield* Effect.gen(function* () {
        const d = yield* Destination.Destination
        const dataset = yield* d.dataset({ dataset: "x_ds", pipelineDir: NodePath.join(dir, "px") })
        return [yield* dataset.execute(`SELECT name FROM ${DATASET_TABLE}`), yield* dataset.rows("events")]
      }).pipe(Effect.provide(destination))
      expect(names[0]).toEqual([{ name: "x_ds" }])
      expect(names[1]!.length).toBe(16)

      // dropping the dataset frees the file for another one
      yield* Effect.flatMap(Destination.Destination, (d) =>
        d.dropDataset({ dataset: "x_ds", pipelineDir: NodePath.join(dir, "px") })
      ).pipe(Effect.provide(destination))
      const fresh = yield* runEvents(destination, NodePath.join(dir, "fresh"), "y_ds", 10)
      expect(fresh.tables).toEqual({ events: 11 })
    })
  )

  it.scopedLive("two first commits of different datasets at once: one wins, the other fails typed", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = Destination.sqlite({ path: NodePath.join(dir, "one.sqlite") })
      const exits = yield* Effect.all(
        [
          Effect.exit(runEvents(destination, NodePath.join(dir, "a"), "a_ds", 10)),
          Effect.exit(runEvents(destination, NodePath.join(dir, "b"), "b_ds", 10))
        ],
        { concurrency: 2 }
      )
      expect(exits.filter(Exit.isSuccess).length).toBe(1)
      const failed = exits.find(Exit.isFailure)
      expect((failureOf(failed!) as { _tag: string })._tag).toBe("DestinationError")
    })
  )

  it.scopedLive("with `directory`, each dataset has its own file and the switch loads every row", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = Destination.sqlite({ directory: NodePath.join(dir, "data") })
      expect((yield* runEvents(destination, dir, "x_ds", 10)).tables).toEqual({ events: 11 })
      expect((yield* runEvents(destination, dir, "y_ds", 10)).tables).toEqual({ events: 11 })
    })
  )
})

const Counter = ResourceState.key("counter", Schema.Number, () => 0)
const counted = (name: string) =>
  Resource.make(
    { name },
    Stream.unwrap(
      Effect.gen(function* () {
        const c = yield* Counter.get
        yield* Counter.set(c + 10)
        return Stream.range(c + 1, c + 10).pipe(Stream.map((id) => ({ id })))
      })
    )
  )
const abc = Source.make({ name: "abc", resources: [counted("a"), counted("b"), counted("c")] })

describe("Orchestrator on the default SQLite", () => {
  it.scopedLive("one destination, one dataset name in two files: each file gets its system tables", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const d = Context.get(yield* Layer.build(Destination.sqlite()), Destination.Destination)
      const commit = (pipelineDir: string) =>
        d.transaction({ dataset: "same_ds", pipelineDir }, { pipelineName: "same", stage: Option.none() }, (tx) =>
          tx.insertLoad({ loadId: "1", schemaName: "s", status: 0, insertedAt: new Date(0), schemaVersionHash: null })
        )
      yield* commit(NodePath.join(dir, "one"))
      // the second file's commit runs without a read before it
      yield* commit(NodePath.join(dir, "two"))
      expect(NodeFs.existsSync(NodePath.join(dir, "two", "same_ds.sqlite"))).toBe(true)
    })
  )

  it.scopedLive("every group loads into the pipeline's own file, which Pipeline.run then goes on from", () =>
    Effect.gen(function* () {
      const pipelinesDir = yield* tempDir()
      const pipeline = { name: "po", dataset: "po_ds", pipelinesDir }
      const groups = Either.getOrThrow(Source.decompose(abc))
      const results = yield* Orchestrator.run({ runId: "r1" }).pipe(
        Effect.provide(Orchestrator.layerInProcess({ pipeline, groups })),
        Effect.provide(Destination.sqlite()),
        Effect.provide(NodeContext.layer)
      )
      expect(results.map((r) => [r.group, r.summary.tables])).toEqual([
        ["a", { a: 10 }],
        ["b", { b: 10 }],
        ["c", { c: 10 }]
      ])
      const file = NodePath.join(pipelinesDir, "po", "po_ds.sqlite")
      expect(NodeFs.existsSync(file)).toBe(true)
      const groupFiles = NodeFs.readdirSync(NodePath.join(pipelinesDir, "groups"), { recursive: true }).filter((f) =>
        String(f).endsWith(".sqlite")
      )
      expect(groupFiles).toEqual([])

      const after = yield* Effect.gen(function* () {
        const summary = yield* Pipeline.run(abc)
        const state = yield* Pipeline.currentState
        const dataset = yield* Pipeline.dataset
        const counts: Array<unknown> = []
        for (const t of ["a", "b", "c"]) {
          counts.push(yield* dataset.query`SELECT count(*) AS n, max(id) AS mx FROM ${dataset.table(t)}`)
        }
        return { summary, state, counts }
      }).pipe(
        Effect.provide(Pipeline.layer(pipeline)),
        Effect.provide(Destination.sqlite()),
        Effect.provide(NodeContext.layer)
      )
      // the run started from the groups' merged state: every slot was there
      expect(after.summary.tables).toEqual({ a: 10, b: 10, c: 10 })
      expect(Object.keys(after.state.sources.abc?.resources ?? {}).sort()).toEqual(["a", "b", "c"])
      expect(after.counts).toEqual([[{ n: 20, mx: 20 }], [{ n: 20, mx: 20 }], [{ n: 20, mx: 20 }]])
    })
  )
})
