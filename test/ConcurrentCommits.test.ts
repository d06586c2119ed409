/**
 * Runs of different resources of one source, started from the same state, commit into one dataset
 * at once: disjoint changes are merged (each run's slots and source-state keys on top of the
 * other's), overlapping ones fail with a StateConflict naming the paths both changed.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Ref, Schema, Stream } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as SourceState from "../src/context/SourceState.js"
import type * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import { newestStored, tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, query, testDestination } from "./postgres.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import { Either } from "effect"

const Cursor = ResourceState.key("cursor", Schema.Number, () => 0)

/**
 * A source of resources `a`..; each loads ids `1..rows` of its own table, keeps a cursor, and may
 * write a source-state key. Every resource waits at `gate` until all runs have started extracting,
 * so every run opened its session (read the state) before any commits.
 */
const source = (
  names: ReadonlyArray<string>,
  gate: Effect.Effect<void>,
  sourceKey: (name: string) => string | undefined
) =>
  Source.make({
    name: "shop",
    resources: names.map((name) =>
      Resource.make(
        { name, writeDisposition: "append" },
        Stream.unwrap(
          Effect.gen(function* () {
            yield* gate
            yield* Cursor.set(3)
            const key = sourceKey(name)
            if (key !== undefined) yield* SourceState.set(key, name)
            return Stream.fromIterable([1, 2, 3].map((id) => ({ id, resource: name })))
          })
        )
      )
    )
  })

/** a gate that opens when `n` fibers reached it */
const barrier = (n: number) =>
  Effect.gen(function* () {
    const arrived = yield* Ref.make(0)
    const open = yield* Deferred.make<void>()
    return Effect.gen(function* () {
      const count = yield* Ref.updateAndGet(arrived, (c) => c + 1)
      if (count >= n) yield* Deferred.succeed(open, undefined)
      yield* Deferred.await(open)
    })
  })

const run = <E, R>(
  pipelinesDir: string,
  dataset: string,
  src: Source.Source<E, R>,
  destination: Layer.Layer<Destination.Destination, unknown>
) =>
  Pipeline.run(src).pipe(
    Effect.provide(Pipeline.layer({ name: "shop_pipeline", dataset, pipelinesDir })),
    Effect.provide(destination),
    Effect.provide(NodeContext.layer)
  )

describe.skipIf(!postgresAvailable)("concurrent commits of a decomposed source (PostgreSQL)", () => {
  it.scopedLive("four runs of disjoint resources all commit; the state holds every slot", () =>
    Effect.gen(function* () {
      const dataset = yield* freshDataset()
      const destination = yield* Layer.memoize(testDestination())
      const groups = ["a", "b", "c", "d"]
      const gate = yield* barrier(groups.length)
      const all = source(groups, gate, (name) => `seen_${name}`)
      const dirs = yield* Effect.forEach(groups, () => tempDir())
      const summaries = yield* Effect.forEach(
        groups,
        (name, i) => run(dirs[i]!, dataset, Source.withResources(all, [name]), destination),
        { concurrency: "unbounded" }
      )
      expect(summaries.every((s) => s.loadId !== null)).toBe(true)
      expect(summaries.map((s) => s.stateVersionAfter).sort()).toEqual([0, 1, 2, 3])
      const stored = yield* newestStored({ dataset, pipelineDir: dirs[0]! }, "shop_pipeline").pipe(
        Effect.provide(destination)
      )
      const state = Either.getOrThrow(StateBlob.decode(stored._tag === "Some" ? stored.value.state : ""))
      expect(Object.keys(PipelineState.getResourceSlots(state, "shop")).sort()).toEqual(groups)
      const own = PipelineState.getSourceSlot(state, "shop")
      for (const name of groups) expect(own[`seen_${name}`]).toBe(name)
      for (const name of groups) {
        const rows = yield* Effect.promise(() => query(`SELECT count(*)::int AS n FROM "${dataset}"."${name}"`))
        expect(rows[0]?.n).toBe(3)
      }
      const versions = yield* Effect.promise(() =>
        query<{ version: string }>(`SELECT version FROM "${dataset}"._dlt_pipeline_state ORDER BY version`)
      )
      expect(versions.map((v) => Number(v.version))).toEqual([0, 1, 2, 3])
    })
  )

  it.scopedLive("two runs writing one source-state key: one commits, the other fails naming the key", () =>
    Effect.gen(function* () {
      const dataset = yield* freshDataset()
      const destination = yield* Layer.memoize(testDestination())
      const gate = yield* barrier(2)
      const all = source(["a", "b"], gate, () => "last_sync")
      const [one, two] = [yield* tempDir(), yield* tempDir()]
      const results = yield* Effect.all(
        [
          Effect.either(run(one, dataset, Source.withResources(all, ["a"]), destination)),
          Effect.either(run(two, dataset, Source.withResources(all, ["b"]), destination))
        ],
        { concurrency: "unbounded" }
      )
      const failed = results.filter(Either.isLeft).map((r) => r.left as { _tag: string; paths?: ReadonlyArray<string> })
      expect(results.filter(Either.isRight)).toHaveLength(1)
      expect(failed).toHaveLength(1)
      expect(failed[0]?._tag).toBe("StateConflict")
      expect(failed[0]?.paths).toEqual(["sources.shop.last_sync"])
      // nothing of the loser was written
      const tables = yield* Effect.promise(() =>
        query<{ table_name: string }>(
          "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name IN ('a', 'b')",
          [dataset]
        )
      )
      expect(tables).toHaveLength(1)
    })
  )
})
