/**
 * A json cell JSON cannot write (a bigint nested in a field) fails the run with a message naming the
 * table and column and saying what to change, on SQLite as on PostgreSQL, and loads nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Stream } from "effect"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import * as StateValue from "../src/state/StateValue.js"
import { tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, testDestination } from "./postgres.js"

const source = Source.make({
  name: "src",
  resources: [
    Resource.make(
      { name: "events", writeDisposition: "append" },
      Stream.fromIterable([
        { id: 1, payload: { ok: 1 } },
        { id: 2, payload: { big: 2n ** 60n } }
      ])
    )
  ]
})

const attempt = (destination: Layer.Layer<Destination.Destination, unknown>, dataset: string) =>
  Effect.gen(function* () {
    const dir = yield* tempDir()
    const exit = yield* Effect.exit(
      Pipeline.run(source).pipe(
        Effect.provide(Pipeline.layerNode({ name: "json_cells", dataset, pipelinesDir: dir })),
        Effect.provide(destination)
      )
    )
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    const message = String((error as { message?: unknown } | undefined)?.message)
    expect(message).toContain("payload")
    expect(message).toContain("events")
    expect(message).toContain("a bigint")
    expect(message).toContain("convert it to a string")
  })

/** a Date nested in a json value is written as dlt writes a datetime: isoformat, +00:00, microseconds */
const nestedDates = (destination: Layer.Layer<Destination.Destination, unknown>, dataset: string) =>
  Effect.gen(function* () {
    const dir = yield* tempDir()
    const layers = Layer.merge(Pipeline.layerNode({ name: "json_dates", dataset, pipelinesDir: dir }), destination)
    const at = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678))
    const dates = Source.make({
      name: "src",
      resources: [
        Resource.make(
          { name: "events" },
          Stream.make({ id: 1, payload: { at, list: [at, { t: StateValue.Timestamp.fromDate(at) }] } })
        )
      ]
    })
    yield* Pipeline.run(dates).pipe(Effect.provide(layers))
    const rows = yield* Effect.flatMap(Pipeline.dataset, (d) => d.table("events").rows()).pipe(Effect.provide(layers))
    const text = "2024-01-02T03:04:05.678000+00:00"
    expect(rows[0]?.payload).toEqual({ at: text, list: [text, { t: text }] })
    // the resource's own value is left as it was
    expect(at).toBeInstanceOf(Date)
  })

describe("a Date nested in a json value", () => {
  it.scoped("SQLite: is written as dlt writes a datetime", () =>
    Effect.gen(function* () {
      const data = yield* tempDir()
      yield* nestedDates(Destination.sqlite({ directory: data }), "json_dates")
    })
  )

  it.scoped.skipIf(!postgresAvailable)("PostgreSQL: the same", () =>
    Effect.gen(function* () {
      const dataset = yield* freshDataset()
      yield* nestedDates(testDestination(), dataset)
    })
  )
})

describe("a json cell that JSON cannot write", () => {
  it.scoped("SQLite: names the table and column and what to change", () =>
    Effect.gen(function* () {
      const data = yield* tempDir()
      yield* attempt(Destination.sqlite({ directory: data }), "json_cells")
    })
  )

  it.scoped.skipIf(!postgresAvailable)("PostgreSQL: the same", () =>
    Effect.gen(function* () {
      const dataset = yield* freshDataset()
      yield* attempt(testDestination(), dataset)
    })
  )
})
