/**
 * A local state belongs to the target it was committed to (destination, location, dataset): a run
 * into another target never starts from it. Each test here replays a sequence that lost rows before
 * the state knew its target.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Schema, Stream, TestClock } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import { tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, query, testDestination } from "./postgres.js"

const LastId = ResourceState.key("last_id", Schema.Number, () => 0)

/** an "API" of orders with increasing ids; the resource loads the ones after its cursor */
const shop = (api: { readonly orders: ReadonlyArray<number> }) =>
  Source.make({
    name: "shop",
    resources: [
      Resource.make(
        { name: "orders", writeDisposition: "append" },
        Stream.unwrap(
          Effect.gen(function* () {
            const last = yield* LastId.get
            const todo = api.orders.filter((id) => id > last)
            if (todo.length > 0) yield* LastId.set(Math.max(...todo))
            return Stream.fromIterable(todo.map((id) => ({ id })))
          })
        )
      )
    ]
  })

const run = (
  pipelinesDir: string,
  api: { readonly orders: ReadonlyArray<number> },
  destination: Layer.Layer<Destination.Destination, unknown>,
  config: Partial<Pipeline.PipelineConfig> = {}
) =>
  Pipeline.run(shop(api)).pipe(
    Effect.provide(Pipeline.layer({ name: "shop", dataset: "shop_data", pipelinesDir, ...config })),
    Effect.provide(destination),
    Effect.provide(NodeContext.layer)
  )

const sqliteIds = (file: string) =>
  Effect.gen(function* () {
    const Sqlite = (yield* Effect.promise(() => import("better-sqlite3"))).default
    const db = new Sqlite(file, { readonly: true })
    try {
      return (db.prepare("SELECT id FROM orders ORDER BY id").all() as Array<{ id: number }>).map((r) => r.id)
    } finally {
      db.close()
    }
  })

const localState = (pipelinesDir: string) =>
  Either.getOrThrow(
    PipelineState.fromFileText(NodeFs.readFileSync(NodePath.join(pipelinesDir, "shop", "state.json"), "utf8"))
  )

describe("a state knows its target", () => {
  it.scoped.skipIf(!postgresAvailable)(
    "SQLite, then PostgreSQL three times while the source grows, then SQLite again: no row is missed",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir()
        const data = yield* tempDir()
        const dataset = yield* freshDataset()
        const sqlite = Destination.sqlite({ directory: data })
        const pg = yield* Layer.memoize(testDestination())
        const api = { orders: [1, 2] }
        const first = yield* run(dir, api, sqlite, { dataset })
        expect(first.tables).toEqual({ orders: 2 })
        for (const next of [3, 4, 5]) {
          api.orders = [...api.orders, next]
          yield* run(dir, api, pg, { dataset })
        }
        expect((yield* Effect.promise(() => query(`SELECT count(*)::int AS n FROM "${dataset}".orders`)))[0]?.n).toBe(5)
        // back on SQLite: the PostgreSQL cursor (5) must not be applied to the SQLite dataset (cursor 2)
        const back = yield* run(dir, api, sqlite, { dataset })
        expect(back.origin).toBe("local") // the state this working dir kept for the SQLite target
        expect(back.tables).toEqual({ orders: 3 })
        expect(yield* sqliteIds(NodePath.join(data, `${dataset}.sqlite`))).toEqual([1, 2, 3, 4, 5])
        // and back on PostgreSQL: its own cursor again
        api.orders = [...api.orders, 6]
        const pgAgain = yield* run(dir, api, pg, { dataset })
        expect(pgAgain.tables).toEqual({ orders: 1 })
      })
  )

  it.scoped("the same sequence with a clean working dir in between restores each target's own state", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const a = yield* tempDir()
      const b = yield* tempDir()
      const one = Destination.sqlite({ directory: a })
      const two = Destination.sqlite({ directory: b })
      const api = { orders: [1, 2] }
      yield* run(dir, api, one)
      api.orders = [1, 2, 3, 4]
      yield* run(dir, api, two)
      NodeFs.rmSync(NodePath.join(dir, "shop", "targets"), { recursive: true, force: true })
      api.orders = [1, 2, 3, 4, 5]
      const back = yield* run(dir, api, one)
      expect(back.origin).toBe("target-changed-destination")
      expect(back.tables).toEqual({ orders: 3 })
      expect(yield* sqliteIds(NodePath.join(a, "shop_data.sqlite"))).toEqual([1, 2, 3, 4, 5])
    })
  )

  it.scoped("a dataset change with restoreFromDestination off starts the new dataset from scratch", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const sqlite = Destination.sqlite({ directory: data })
      const api = { orders: [1, 2, 3] }
      yield* run(dir, api, sqlite, { dataset: "first", restoreFromDestination: false })
      const second = yield* run(dir, api, sqlite, { dataset: "second", restoreFromDestination: false })
      expect(second.origin).toBe("target-changed-new")
      expect(second.tables).toEqual({ orders: 3 })
      expect(yield* sqliteIds(NodePath.join(data, "second.sqlite"))).toEqual([1, 2, 3])
      // back to the first dataset, still without reading the destination: its own cursor
      api.orders = [1, 2, 3, 4]
      const first = yield* run(dir, api, sqlite, { dataset: "first", restoreFromDestination: false })
      expect(first.tables).toEqual({ orders: 1 })
      expect(yield* sqliteIds(NodePath.join(data, "first.sqlite"))).toEqual([1, 2, 3, 4])
    })
  )

  it.scoped("dev mode, then a normal run with restore off: the normal dataset gets every row", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const sqlite = Destination.sqlite({ directory: data })
      const api = { orders: [1, 2, 3] }
      const dev = yield* run(dir, api, sqlite, { devMode: true, restoreFromDestination: false })
      expect(dev.dataset).toMatch(/^shop_data_\d{14}$/)
      expect(dev.tables).toEqual({ orders: 3 })
      const normal = yield* run(dir, api, sqlite, { restoreFromDestination: false })
      expect(normal.dataset).toBe("shop_data")
      expect(normal.tables).toEqual({ orders: 3 })
      expect(yield* sqliteIds(NodePath.join(data, "shop_data.sqlite"))).toEqual([1, 2, 3])
    })
  )

  it.scoped("a dev-mode pipeline instance keeps its state across its own runs into its own dataset", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      const api = { orders: [1, 2] }
      const layers = Layer.mergeAll(
        Pipeline.layer({ name: "shop", dataset: "shop_data", pipelinesDir: dir, devMode: true }),
        Destination.sqlite({ directory: data })
      ).pipe(Layer.provideMerge(NodeContext.layer))
      const instance = yield* Layer.memoize(layers)
      const first = yield* Pipeline.run(shop(api)).pipe(Effect.provide(instance))
      api.orders = [1, 2, 3]
      const second = yield* Pipeline.run(shop(api)).pipe(Effect.provide(instance))
      expect(second.dataset).toBe(first.dataset)
      expect(second.origin).toBe("local")
      expect(second.tables).toEqual({ orders: 1 })
      expect(yield* sqliteIds(NodePath.join(data, `${first.dataset}.sqlite`))).toEqual([1, 2, 3])
      // a new instance is a new dev dataset and a fresh state (dlt's dev mode)
      yield* TestClock.adjust("2 seconds")
      const other = yield* run(dir, api, Destination.sqlite({ directory: data }), { devMode: true })
      expect(other.dataset).not.toBe(first.dataset)
      expect(other.tables).toEqual({ orders: 3 })
    })
  )

  it.scoped("the local state records the location it was committed to", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const data = yield* tempDir()
      yield* run(dir, { orders: [1] }, Destination.sqlite({ directory: data }))
      const local = localState(dir)
      expect(local._local.location).toBe(NodePath.join(data, "shop_data.sqlite"))
      expect(local.destination_name).toBe("sqlite")
      expect(local.dataset_name).toBe("shop_data")
    })
  )
})
