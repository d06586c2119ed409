/**
 * Issue 9, items 1 and 2, replayed through Pipeline.run on SQLite and PostgreSQL: merge keys are
 * enforced (a text key is coerced into the bigint key, records without a key fail the run and load
 * nothing) and colliding column names fail instead of overwriting each other. On main every one of
 * these runs reported success and loaded the rows wrongly.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Stream } from "effect"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import { tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, query, testDestination } from "./postgres.js"

const users = (records: ReadonlyArray<Record<string, unknown>>) =>
  Source.make({
    name: "src",
    resources: [
      Resource.make({ name: "users", writeDisposition: "merge", primaryKey: ["id"] }, Stream.fromIterable(records))
    ]
  })

const failureOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const scenario = (
  destination: Layer.Layer<Destination.Destination, unknown>,
  dataset: string,
  dir: string,
  countRows: () => Effect.Effect<number>
) =>
  Effect.gen(function* () {
    const run = <E, R>(source: Source.Source<E, R>) =>
      Effect.exit(
        Pipeline.run(source).pipe(
          Effect.provide(Pipeline.layerNode({ name: "keys", dataset, pipelinesDir: dir })),
          Effect.provide(destination)
        )
      )
    // run 1: one row
    expect(Exit.isSuccess(yield* run(users([{ id: 1, name: "a" }])))).toBe(true)
    expect(yield* countRows()).toBe(1)
    // run 2: the key as text is the same key: still one row (it used to add a row with id NULL)
    expect(Exit.isSuccess(yield* run(users([{ id: "1", name: "a2" }])))).toBe(true)
    expect(yield* countRows()).toBe(1)
    // run 3: records without a key fail the run, nothing is loaded (they used to collapse into one NULL key)
    const missing = failureOf(yield* run(users([{ name: "x" }, { name: "y" }])))
    expect(missing).toMatchObject({
      _tag: "MissingPrimaryKey",
      resource: "users",
      table: "users",
      column: "id",
      position: 0
    })
    expect(yield* countRows()).toBe(1)
    // a key that cannot be the bigint key without loss fails too, and never goes to a variant column
    const invalid = failureOf(yield* run(users([{ id: "1.0", name: "z" }])))
    expect(invalid).toMatchObject({ _tag: "InvalidPrimaryKeyValue", column: "id" })
    expect(yield* countRows()).toBe(1)
    // item 2: colliding names fail instead of overwriting each other
    const collide = Source.make({
      name: "src",
      resources: [Resource.make({ name: "people" }, Stream.make({ userId: "a", user_id: "b" }))]
    })
    expect(failureOf(yield* run(collide))).toMatchObject({
      _tag: "ColumnNameCollision",
      table: "people",
      column: "user_id",
      fields: ["userId", "user_id"]
    })
    const reserved = Source.make({
      name: "src",
      resources: [Resource.make({ name: "people" }, Stream.make({ _dlt_id: "mine", n: 1 }))]
    })
    expect(failureOf(yield* run(reserved))).toMatchObject({ _tag: "ReservedColumnName", field: "_dlt_id" })
  })

describe("issue 9: keys and column names through a run", () => {
  it.scoped("SQLite", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.sqlite({ directory: dir }))
      const countRows = () =>
        Effect.gen(function* () {
          const d = yield* Destination.Destination
          const access = yield* d.dataset({ dataset: "ds", pipelineDir: `${dir}/keys` })
          return (yield* access.rows("users")).length
        }).pipe(Effect.provide(destination), Effect.orDie)
      yield* scenario(destination, "ds", dir, countRows)
    })
  )

  it.scoped.skipIf(!postgresAvailable)("PostgreSQL", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset("keys")
      const destination = yield* Layer.memoize(testDestination())
      const countRows = () =>
        Effect.promise(() => query<{ n: string }>(`SELECT count(*) AS n FROM "${dataset}".users`)).pipe(
          Effect.map((rows) => Number(rows[0]?.n))
        )
      yield* scenario(destination, dataset, dir, countRows)
    })
  )
})
