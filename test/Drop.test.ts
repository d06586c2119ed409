import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Option, Redacted, Stream } from "effect"
import * as Destination from "../src/destination/index.js"
import * as Drop from "../src/pipeline/Drop.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import { runShop, sqliteTables } from "./cli/fixtures.js"
import { tempDir } from "./helpers.js"
import { freshDataset, postgresAvailable, query, TEST_POSTGRES_URL } from "./postgres.js"

// ---------------------------------------------------------------------------------------------
// plan (pure)
// ---------------------------------------------------------------------------------------------

const base = (() => {
  let s = PipelineState.empty({ pipelineName: "p", datasetName: "ds" })
  s = PipelineState.withResourceSlot(s, "shop", "orders", { last_id: 10 })
  s = PipelineState.withResourceSlot(s, "shop", "customers", { last_id: 3, cursor: "x" })
  s = PipelineState.withResourceSlot(s, "shop", "OrderItems", { n: 1 })
  s = PipelineState.withSourceSlot(s, "shop", {
    ...PipelineState.getSourceSlot(s, "shop"),
    last_sync: new Date(0),
    pages: [1, 2, 3],
    meta: { cursor: "c", keep: true }
  })
  s = PipelineState.withResourceSlot(s, "crm", "contacts", { since: "2024" })
  return PipelineState.withSourceSlot(s, "crm", { ...PipelineState.getSourceSlot(s, "crm"), token: "t" })
})()

const planOf = (selection: Drop.Selection) => Either.getOrThrow(Drop.plan(base, selection))

describe("Drop.plan", () => {
  it("drops a resource by exact name: its slot and its normalized table, nothing else", () => {
    const plan = planOf({ resources: ["OrderItems"] })
    expect(plan.resources).toEqual([
      { source: "shop", resource: "OrderItems", tables: ["order_items"], hasState: true }
    ])
    expect(plan.tables).toEqual(["order_items"])
    expect(Object.keys(PipelineState.getResourceSlots(plan.state, "shop"))).toEqual(["orders", "customers"])
    expect(PipelineState.getSourceSlot(plan.state, "shop").pages).toEqual([1, 2, 3])
    expect(plan.state.sources.crm).toBe(base.sources.crm)
    expect(plan.isEmpty).toBe(false)
  })

  it("matches re: patterns anywhere in the name, across sources, and warns about a pattern that matched nothing", () => {
    const plan = planOf({ resources: ["re:^c", "re:zzz"] })
    expect(plan.resources.map((r) => `${r.source}.${r.resource}`)).toEqual(["shop.customers", "crm.contacts"])
    expect(plan.tables).toEqual(["contacts", "customers"])
    expect(plan.warnings).toEqual(["re:zzz matched no resource"])
    expect(planOf({ resources: ["re:ders"] }).tables).toEqual(["orders"])
  })

  it("a pattern that matches nothing alone is an empty plan, not an error", () => {
    const plan = planOf({ resources: ["re:^nothing$"] })
    expect(plan.isEmpty).toBe(true)
    expect(plan.state).toBe(base)
  })

  it("an unknown exact name fails, listing the known resources", () => {
    const result = Drop.plan(base, { resources: ["orders", "order"] })
    expect(Either.isLeft(result)).toBe(true)
    const error = Either.getLeft(result).pipe(Option.getOrThrow)
    expect(error._tag).toBe("UnknownResource")
    expect(error.message).toContain('"order"')
    expect(error.message).toContain("shop.orders, shop.customers, shop.OrderItems, crm.contacts")
  })

  it("an invalid regex fails with the engine's reason", () => {
    const error = Either.getLeft(Drop.plan(base, { resources: ["re:(unclosed"] })).pipe(Option.getOrThrow)
    expect(error._tag).toBe("InvalidResourcePattern")
    expect(error.message).toContain("re:(unclosed")
  })

  it("state paths reset source state only: resources are invisible to them, no table goes", () => {
    const plan = planOf({ statePaths: ["$..cursor", "pages[-1]"] })
    expect(plan.tables).toEqual([])
    expect(plan.resources).toEqual([])
    expect(plan.statePaths).toEqual([
      { source: "shop", path: "pages[2]" },
      { source: "shop", path: "meta.cursor" }
    ])
    const shop = PipelineState.getSourceSlot(plan.state, "shop")
    expect(shop.pages).toEqual([1, 2])
    expect(shop.meta).toEqual({ keep: true })
    // `cursor` of the customers resource is below `resources`, which the paths cannot see
    expect(PipelineState.getResourceSlot(plan.state, "shop", "customers")).toEqual({ last_id: 3, cursor: "x" })
  })

  it("a bad state path fails with its position", () => {
    const error = Either.getLeft(Drop.plan(base, { statePaths: ["meta[0"] })).pipe(Option.getOrThrow)
    expect(error._tag).toBe("InvalidStatePath")
    expect(error.message).toContain("at position 6")
  })

  it("drop-all drops every resource's table and the whole source state; --source narrows it", () => {
    const all = planOf({ dropAll: true })
    expect(all.tables).toEqual(["contacts", "customers", "order_items", "orders"])
    expect(all.sources).toEqual(["shop", "crm"])
    expect(all.state.sources).toEqual({})
    const shopOnly = planOf({ dropAll: true, sources: ["shop"] })
    expect(shopOnly.tables).toEqual(["customers", "order_items", "orders"])
    expect(Object.keys(shopOnly.state.sources)).toEqual(["crm"])
    expect(Either.getLeft(Drop.plan(base, { dropAll: true, sources: ["nope"] })).pipe(Option.getOrThrow)._tag).toBe(
      "UnknownSource"
    )
  })

  it("never drops a _dlt* table, and stateOnly keeps every table", () => {
    const plan = planOf({ resources: ["orders", "customers"], tableOf: (_s, r) => (r === "orders" ? "_dlt_loads" : r) })
    expect(plan.tables).toEqual(["customers"])
    expect(plan.keptReservedTables).toEqual(["_dlt_loads"])
    expect(plan.resources[0]).toEqual({ source: "shop", resource: "orders", tables: [], hasState: true })
    const stateOnly = planOf({ resources: ["orders"], stateOnly: true })
    expect(stateOnly.tables).toEqual([])
    expect(Object.keys(PipelineState.getResourceSlots(stateOnly.state, "shop"))).not.toContain("orders")
  })

  it("refuses to drop a table shared with a resource that is not selected, and drops it with all its writers", () => {
    const tableOf = (_s: string, r: string) => (r === "customers" ? "orders" : r)
    const refused = Either.getLeft(Drop.plan(base, { resources: ["orders"], tableOf })).pipe(Option.getOrThrow)
    expect(refused._tag).toBe("SharedTable")
    expect(refused.message).toContain(
      "table orders is written by shop.orders (selected) and also by shop.customers (not selected)"
    )
    expect(refused.message).toContain("Select them too: drop orders customers")
    const both = planOf({ resources: ["orders", "customers"], tableOf })
    expect(both.tables).toEqual(["orders"])
    expect(both.warnings).toEqual([])
  })

  it("tablesOf uses the resources' own table names", () => {
    const resource = Resource.make({ name: "orders", tableName: "ShopOrders" }, Stream.empty)
    expect(planOf({ resources: ["orders"], tableOf: Drop.tablesOf([resource]) }).tables).toEqual(["shop_orders"])
  })

  it("an empty selection fails", () => {
    expect(Either.getLeft(Drop.plan(base, {})).pipe(Option.getOrThrow)._tag).toBe("EmptySelection")
  })
})

// ---------------------------------------------------------------------------------------------
// apply on SQLite
// ---------------------------------------------------------------------------------------------

const sqliteFile = (dir: string) => NodePath.join(dir, "shop_pipeline", "ds.sqlite")

const applyIn = <E>(dir: string, options: Drop.ApplyOptions<E, never>) =>
  Drop.apply(options).pipe(
    Effect.provide(
      Layer.merge(Pipeline.layerNode({ name: "shop_pipeline", dataset: "ds", pipelinesDir: dir }), Destination.sqlite())
    )
  )

const versionsIn = (file: string) =>
  Effect.gen(function* () {
    const destination = yield* Destination.Destination
    return (yield* destination.stateRows(
      { dataset: "ds", pipelineDir: NodePath.dirname(file) },
      "shop_pipeline",
      100
    )).map((row) => row.version)
  }).pipe(Effect.provide(Destination.sqlite({ path: file })))

const loadsIn = (file: string) =>
  Effect.gen(function* () {
    const destination = yield* Destination.Destination
    const access = yield* destination.dataset({ dataset: "ds", pipelineDir: NodePath.dirname(file) })
    return (yield* access.execute("SELECT load_id FROM _dlt_loads")).length
  }).pipe(Effect.provide(Destination.sqlite({ path: file })))

const localState = (dir: string) =>
  Either.getOrThrow(
    PipelineState.fromFileText(NodeFs.readFileSync(NodePath.join(dir, "shop_pipeline", "state.json"), "utf8"))
  )

describe("Drop.apply (SQLite)", () => {
  it.scoped("drops the table and the resource state in a load of its own, as a new state version", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* runShop({ pipelinesDir: dir, dataset: "ds" }, Destination.sqlite())
      const file = sqliteFile(dir)
      const loadsBefore = yield* loadsIn(file)
      const outcome = yield* applyIn(dir, { resources: ["OrderItems"] })
      expect(outcome._tag).toBe("Dropped")
      if (outcome._tag !== "Dropped") return
      expect(outcome.version).toBe(1)
      expect(outcome.preview.presentTables).toEqual(["order_items"])
      expect(yield* sqliteTables(file)).toEqual([
        "_dlt_loads",
        "_dlt_pipeline_state",
        "_dlt_version",
        "customers",
        "orders"
      ])
      expect(yield* versionsIn(file)).toEqual([1, 0])
      expect(yield* loadsIn(file)).toBe(loadsBefore + 1)
      const local = localState(dir)
      expect(local._state_version).toBe(1)
      expect(local._version_hash).toBe(outcome.versionHash)
      expect(Object.keys(PipelineState.getResourceSlots(local, "shop"))).toEqual(["orders", "customers"])
      expect(local._local._last_extracted_at).toBeInstanceOf(Date)

      // the next run starts the dropped resource over: its table comes back with every row
      const summary = yield* runShop({ pipelinesDir: dir, dataset: "ds", run: 2 }, Destination.sqlite())
      expect(summary.origin).toBe("local")
      expect(summary.tables.order_items).toBe(5)
      expect(PipelineState.getResourceSlot(localState(dir), "shop", "OrderItems").seen).toEqual([
        "OrderItems-6",
        "OrderItems-7",
        "OrderItems-8",
        "OrderItems-9",
        "OrderItems-10"
      ])
    })
  )

  it.scoped("a dry run and a refused confirmation change nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* runShop({ pipelinesDir: dir, dataset: "ds" }, Destination.sqlite())
      const file = sqliteFile(dir)
      const before = NodeFs.readFileSync(NodePath.join(dir, "shop_pipeline", "state.json"), "utf8")
      const dry = yield* applyIn(dir, { dropAll: true, dryRun: true })
      expect(dry._tag).toBe("DryRun")
      expect(dry.preview.plan.tables).toEqual(["customers", "order_items", "orders"])
      let asked = 0
      const cancelled = yield* applyIn(dir, {
        resources: ["orders"],
        confirm: () => Effect.sync(() => ++asked > 1)
      })
      expect(cancelled._tag).toBe("Cancelled")
      expect(asked).toBe(1)
      expect(yield* sqliteTables(file)).toEqual([
        "_dlt_loads",
        "_dlt_pipeline_state",
        "_dlt_version",
        "customers",
        "order_items",
        "orders"
      ])
      expect(yield* versionsIn(file)).toEqual([0])
      expect(NodeFs.readFileSync(NodePath.join(dir, "shop_pipeline", "state.json"), "utf8")).toBe(before)
    })
  )

  it.scoped("state paths reset state without touching a table", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      yield* runShop({ pipelinesDir: dir, dataset: "ds" }, Destination.sqlite())
      const outcome = yield* applyIn(dir, { statePaths: ["meta.cursor", "last_sync"] })
      expect(outcome._tag).toBe("Dropped")
      expect(outcome.preview.plan.tables).toEqual([])
      expect(yield* sqliteTables(sqliteFile(dir))).toContain("orders")
      const shop = PipelineState.getSourceSlot(localState(dir), "shop")
      expect(shop.meta).toEqual({ keep: true })
      expect(shop.last_sync).toBeUndefined()
      expect(shop.pages).toEqual([1, 2, 3])
    })
  )

  it.scoped("another run committing meanwhile makes the drop fail with StateConflict, dropping nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const other = yield* tempDir()
      const file = NodePath.join(dir, "shared.sqlite")
      const shared = () => Destination.sqlite({ path: file })
      yield* runShop({ pipelinesDir: dir, dataset: "ds" }, shared())
      const exit = yield* Drop.apply({
        resources: ["orders"],
        // a run on another machine (another working dir) commits while we are asked
        confirm: () =>
          runShop({ pipelinesDir: other, dataset: "ds", run: 2 }, shared()).pipe(Effect.as(true), Effect.orDie)
      }).pipe(
        Effect.provide(
          Layer.merge(Pipeline.layerNode({ name: "shop_pipeline", dataset: "ds", pipelinesDir: dir }), shared())
        ),
        Effect.exit
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("StateConflict")
      expect(yield* sqliteTables(file)).toContain("orders")
      expect(yield* versionsIn(file)).toEqual([1, 0])
      expect(localState(dir)._state_version).toBe(0)
    })
  )

  it.scoped("starts from the destination's newer state when the local one is behind", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const other = yield* tempDir()
      const file = NodePath.join(dir, "shared.sqlite")
      yield* runShop({ pipelinesDir: dir, dataset: "ds" }, Destination.sqlite({ path: file }))
      yield* runShop({ pipelinesDir: other, dataset: "ds", run: 2 }, Destination.sqlite({ path: file }))
      const outcome = yield* Drop.apply({ statePaths: ["pages"] }).pipe(
        Effect.provide(
          Layer.merge(
            Pipeline.layerNode({ name: "shop_pipeline", dataset: "ds", pipelinesDir: dir }),
            Destination.sqlite({ path: file })
          )
        )
      )
      expect(outcome._tag).toBe("Dropped")
      if (outcome._tag !== "Dropped") return
      expect(outcome.preview.fromVersion).toBe(1)
      expect(outcome.version).toBe(2)
      const local = localState(dir)
      expect(PipelineState.getResourceSlot(local, "shop", "orders").last_id).toBe(20)
      expect(PipelineState.getSourceSlot(local, "shop").pages).toBeUndefined()
    })
  )
})

// ---------------------------------------------------------------------------------------------
// apply on PostgreSQL
// ---------------------------------------------------------------------------------------------

describe.skipIf(!postgresAvailable)("Drop.apply (PostgreSQL)", () => {
  const pg = () => Destination.postgres({ url: Redacted.make(TEST_POSTGRES_URL) })
  const tables = (dataset: string) =>
    Effect.promise(() =>
      query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
        [dataset]
      )
    ).pipe(Effect.map((rows) => rows.map((r) => r.table_name)))

  it.scoped("drops tables and commits the state in one transaction; drop-all empties the source state", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const dataset = yield* freshDataset("drop")
      yield* runShop({ pipelinesDir: dir, dataset }, pg())
      const layer = Layer.merge(Pipeline.layerNode({ name: "shop_pipeline", dataset, pipelinesDir: dir }), pg())
      const first = yield* Drop.apply({ resources: ["re:^cust"] }).pipe(Effect.provide(layer))
      expect(first._tag).toBe("Dropped")
      expect(yield* tables(dataset)).toEqual([
        "_dlt_loads",
        "_dlt_pipeline_state",
        "_dlt_version",
        "order_items",
        "orders"
      ])
      const all = yield* Drop.apply({ dropAll: true }).pipe(Effect.provide(layer))
      expect(all._tag).toBe("Dropped")
      expect(yield* tables(dataset)).toEqual(["_dlt_loads", "_dlt_pipeline_state", "_dlt_version"])
      const rows = yield* Effect.promise(() =>
        query<{ version: string }>(`SELECT version FROM "${dataset}"._dlt_pipeline_state ORDER BY version`)
      )
      expect(rows.map((r) => Number(r.version))).toEqual([0, 1, 2])
      const loads = yield* Effect.promise(() => query(`SELECT load_id FROM "${dataset}"._dlt_loads`))
      expect(loads.length).toBe(3)
      expect(localState(dir).sources).toEqual({})
    })
  )
})
