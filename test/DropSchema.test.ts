/**
 * dlt's `test_drop_command_resources_and_state`, on pipestate: a source whose resources c, d and
 * no_state keep no resource state (d writes source state); dropping them with the state path
 * `data_from_d.*.bar` removes their tables (found through the stored schema), resets the path,
 * leaves a and b alone, and the destination's state equals the local one afterwards. A rerun
 * recreates the dropped tables.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Stream } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as SourceState from "../src/context/SourceState.js"
import * as Destination from "../src/destination/index.js"
import * as Drop from "../src/pipeline/Drop.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Schemas from "../src/internal/pipeline/Schemas.js"
import * as Source from "../src/pipeline/Source.js"
import * as StoredSchema from "../src/internal/schema/StoredSchema.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import { newestStored, tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, testDestination } from "./postgres.js"

const droppable = (dropColumns = false) =>
  Source.make({
    name: "droppable",
    resources: [
      Resource.make(
        { name: "droppable_a" },
        Stream.unwrap(
          Effect.as(
            ResourceState.set("last_a", 4),
            Stream.make(
              ...(dropColumns
                ? [
                    { a: 1, b: 2 },
                    { a: 4, b: 23 }
                  ]
                : [
                    { a: 1, b: 2, c: 3 },
                    { a: 4, b: 23, c: 24 }
                  ])
            )
          )
        )
      ),
      Resource.make(
        { name: "droppable_b" },
        Stream.unwrap(
          Effect.as(
            ResourceState.set("last_asd", 2323),
            Stream.make({ asd: 2323, qe: 555, items: [{ m: 1 }, { m: 3 }] })
          )
        )
      ),
      Resource.make({ name: "droppable_c" }, Stream.make(dropColumns ? { qe: 111 } : { asdasd: 2424, qe: 111 })),
      Resource.make(
        { name: "droppable_d" },
        Stream.unwrap(
          Effect.as(
            SourceState.set("data_from_d", { foo1: { bar: 1 }, foo2: { bar: 2 } }),
            Stream.make({ o: 55 }, { o: 22 })
          )
        )
      ),
      Resource.make({ name: "droppable_no_state" }, Stream.make({ value: 1 }, { value: 2 }, { value: 3 }))
    ]
  })

const scenario = (destination: Layer.Layer<Destination.Destination, unknown>, dataset: string) =>
  Effect.gen(function* () {
    const dir = yield* tempDir()
    const layers = Layer.mergeAll(Pipeline.layer({ name: "droppable", dataset, pipelinesDir: dir }), destination).pipe(
      Layer.provideMerge(NodeContext.layer)
    )
    const target = { dataset, pipelineDir: NodePath.join(dir, "droppable") }
    const counts = Effect.gen(function* () {
      const d = yield* Destination.Destination
      const access = yield* d.dataset(target)
      const result: Record<string, number> = {}
      for (const table of ["droppable_a", "droppable_b", "droppable_c", "droppable_d", "droppable_no_state"]) {
        result[table] = (yield* access.tableExists(table)) ? (yield* access.rows(table)).length : -1
      }
      return result
    })
    return yield* Effect.gen(function* () {
      yield* Pipeline.run(droppable())
      expect(yield* counts).toEqual({
        droppable_a: 2,
        droppable_b: 1,
        droppable_c: 1,
        droppable_d: 2,
        droppable_no_state: 3
      })

      const outcome = yield* Drop.apply({
        resources: ["droppable_c", "droppable_d", "droppable_no_state"],
        statePaths: ["data_from_d.*.bar"]
      })
      expect(outcome._tag).toBe("Dropped")
      expect([...outcome.preview.plan.tables]).toEqual(["droppable_c", "droppable_d", "droppable_no_state"])
      expect(outcome.preview.plan.resources.map((r) => [r.resource, r.hasState])).toEqual([
        ["droppable_c", false],
        ["droppable_d", false],
        ["droppable_no_state", false]
      ])

      // the tables went, the others stayed
      expect(yield* counts).toEqual({
        droppable_a: 2,
        droppable_b: 1,
        droppable_c: -1,
        droppable_d: -1,
        droppable_no_state: -1
      })
      // the stored schema lost them too
      const d = yield* Destination.Destination
      const schema = Option.getOrThrow(yield* Schemas.newest(d, target, "droppable"))
      expect(StoredSchema.dataTables(schema).map((t) => t.name)).toEqual(["droppable_a", "droppable_b"])
      // resource state of a and b stays; the state path was reset
      const local = Either.getOrThrow(
        PipelineState.fromFileText(NodeFs.readFileSync(NodePath.join(target.pipelineDir, "state.json"), "utf8"))
      )
      expect(Object.keys(PipelineState.getResourceSlots(local, "droppable")).sort()).toEqual([
        "droppable_a",
        "droppable_b"
      ])
      expect(PipelineState.getSourceSlot(local, "droppable").data_from_d).toEqual({ foo1: {}, foo2: {} })
      // the destination's state equals the local one
      const stored = Option.getOrThrow(yield* newestStored(target, "droppable"))
      const remote = Either.getOrThrow(StateBlob.decode(stored.state))
      expect(remote.sources).toEqual(local.sources)
      expect(remote._version_hash).toBe(local._version_hash)
      expect(stored.version).toBe(local._state_version)

      // a rerun recreates what was dropped
      yield* Pipeline.run(droppable(true))
      expect(yield* counts).toEqual({
        droppable_a: 4,
        droppable_b: 2,
        droppable_c: 1,
        droppable_d: 2,
        droppable_no_state: 3
      })
    }).pipe(Effect.provide(layers))
  })

describe("drop through the stored schema (dlt's test_drop_command_resources_and_state)", () => {
  it.scoped("SQLite", () => scenario(Destination.sqlite(), "droppable_data"))
  it.scoped.skipIf(!postgresAvailable)("PostgreSQL", () =>
    Effect.flatMap(freshDataset(), (dataset) => scenario(testDestination(), dataset))
  )
})
