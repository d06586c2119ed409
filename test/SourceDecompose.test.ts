import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Layer, Option, Schema, Stream } from "effect"
import * as PipelineContext from "../src/context/PipelineContext.js"
import * as ResourceState from "../src/context/ResourceState.js"
import * as SourceState from "../src/context/SourceState.js"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateValue from "../src/state/StateValue.js"
import { tempDir } from "./helpers.js"

const Runs = ResourceState.key("runs", Schema.Number, () => 0)

/** a resource that counts its runs in its state slot and loads `rows` rows tagged with that count */
const counting = (name: string, rows = 2, writeDisposition: "append" | "replace" = "append") =>
  Resource.make(
    { name, writeDisposition },
    Stream.unwrap(
      Effect.gen(function* () {
        const run = (yield* Runs.get) + 1
        yield* Runs.set(run)
        return Stream.fromIterable(Array.from({ length: rows }, (_, i) => ({ id: i, run })))
      })
    )
  )

const shop = () =>
  Source.make({
    name: "shop",
    resources: [counting("orders"), counting("customers"), counting("snapshot", 3, "replace")]
  })

const runIn = <E, R>(dir: string, source: Source.Source<E, R>, destination: Layer.Layer<Destination.Destination>) =>
  Pipeline.run(source).pipe(
    Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir })),
    Effect.provide(destination)
  )

const localState = (dir: string) =>
  Either.getOrThrow(PipelineState.fromFileText(NodeFs.readFileSync(NodePath.join(dir, "p", "state.json"), "utf8")))

const slotText = (state: PipelineState.PipelineState, resource: string) =>
  Either.getOrThrow(StateValue.stringify(PipelineState.getResourceSlot(state, "shop", resource)))

const countRows = (destination: Layer.Layer<Destination.Destination>, table: string, dir: string) =>
  Effect.gen(function* () {
    const d = yield* Destination.Destination
    const access = yield* d.dataset({ dataset: "ds", pipelineDir: NodePath.join(dir, "p") })
    if (!(yield* access.tableExists(table))) return 0
    const rows = yield* access.execute(`SELECT count(*) AS n FROM ${access.table(table)}`)
    return Number(rows[0]?.n)
  }).pipe(Effect.provide(destination))

const leftOf = <A, E>(either: Either.Either<A, E>): E => {
  if (Either.isRight(either)) throw new Error(`expected a Left, got ${JSON.stringify(either.right)}`)
  return either.left
}

describe("Source.withResources", () => {
  it.scoped("runs only the selected resources and leaves every other slot and table as it was", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      yield* runIn(dir, shop(), shared)
      const before = localState(dir)

      const summary = yield* runIn(dir, Source.withResources(shop(), ["orders"]), shared)
      expect(summary.tables).toEqual({ orders: 2 })
      const after = localState(dir)
      expect(PipelineState.getResourceSlot(after, "shop", "orders")).toEqual({ runs: 2 })
      // the replace resource outside the selection keeps its state slot and its table
      expect(slotText(after, "snapshot")).toBe(slotText(before, "snapshot"))
      expect(slotText(after, "customers")).toBe(slotText(before, "customers"))
      expect(yield* countRows(shared, "snapshot", dir)).toBe(3)
      expect(yield* countRows(shared, "customers", dir)).toBe(2)
      expect(yield* countRows(shared, "orders", dir)).toBe(4)
    })
  )

  it("keeps the source's name and order, counts duplicate names once and exposes the selection", () => {
    const selected = Source.withResources(shop(), ["snapshot", "orders", "orders"])
    expect(selected.name).toBe("shop")
    expect(selected.selection).toEqual(Option.some(["snapshot", "orders"]))
    expect(selected.resourceNames).toEqual(Option.some(["orders", "snapshot"]))
    expect(shop().selection).toEqual(Option.none())
    expect(shop().resourceNames).toEqual(Option.some(["orders", "customers", "snapshot"]))
  })

  it.scoped("an unknown name fails the run before anything is extracted, listing the known names", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      const exit = yield* Effect.exit(runIn(dir, Source.withResources(shop(), ["orders", "oders"]), shared))
      expect(exit).toStrictEqual(
        Exit.fail(
          new Source.UnknownResources({
            source: "shop",
            unknown: ["oders"],
            known: ["orders", "customers", "snapshot"]
          })
        )
      )
      expect(yield* countRows(shared, "orders", dir)).toBe(0)
      const error = new Source.UnknownResources({ source: "shop", unknown: ["oders"], known: ["orders", "customers"] })
      expect(error.message).toBe('source shop has no resource named "oders"; its resources are: "orders", "customers"')
    })
  )

  it.scoped("works on a withSetup source, whose resources are known only after its setup", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      let setups = 0
      // the setup reads the source state (read-only), as a real withSetup source does
      const setup = Effect.map(SourceState.get("tables"), (): ReadonlyArray<string> => {
        setups += 1
        return ["orders", "customers"]
      })
      const dynamic = Source.withSetup({
        name: "shop",
        setup,
        resources: (tables) => tables.map((t) => counting(t))
      })
      expect(dynamic.resourceNames).toEqual(Option.none())
      const selected = Source.withResources(dynamic, ["customers"])
      expect(selected.resourceNames).toEqual(Option.none())
      const summary = yield* runIn(dir, selected, shared)
      expect(summary.tables).toEqual({ customers: 2 })
      expect(setups).toBe(1)
      expect(localState(dir).sources.shop?.resources).toEqual({ customers: { runs: 1 } })

      const exit = yield* Effect.exit(runIn(dir, Source.withResources(dynamic, ["products"]), shared))
      expect(exit).toStrictEqual(
        Exit.fail(
          new Source.UnknownResources({ source: "shop", unknown: ["products"], known: ["orders", "customers"] })
        )
      )
    })
  )

  it.scoped("a selection of a selection selects among the selected resources only", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      const outer = Source.withResources(Source.withResources(shop(), ["orders", "customers"]), ["customers"])
      expect(outer.selection).toEqual(Option.some(["customers"]))
      expect((yield* runIn(dir, outer, shared)).tables).toEqual({ customers: 2 })
      const exit = yield* Effect.exit(
        runIn(dir, Source.withResources(Source.withResources(shop(), ["orders"]), ["customers"]), shared)
      )
      expect(exit).toStrictEqual(
        Exit.fail(new Source.UnknownResources({ source: "shop", unknown: ["customers"], known: ["orders"] }))
      )
    })
  )
})

describe("Source.decompose", () => {
  it.scoped("splits a source into one group per resource; each runs on its own and owns only its slot", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      const groups = yield* Source.decompose(shop())
      expect(groups.map((g) => [g.name, g.resources, g.source.name])).toEqual([
        ["orders", ["orders"], "shop"],
        ["customers", ["customers"], "shop"],
        ["snapshot", ["snapshot"], "shop"]
      ])
      expect(groups.map((g) => g.source.selection)).toEqual(groups.map((g) => Option.some(g.resources)))

      for (const group of groups) {
        const before = yield* Effect.sync(() =>
          NodeFs.existsSync(NodePath.join(dir, "p", "state.json")) ? localState(dir) : undefined
        )
        const summary = yield* runIn(dir, group.source, shared)
        expect(Object.keys(summary.tables)).toEqual(group.resources)
        const after = localState(dir)
        if (before !== undefined) {
          for (const other of groups.filter((g) => g !== group).flatMap((g) => g.resources)) {
            expect(slotText(after, other)).toBe(slotText(before, other))
          }
        }
      }
      const final = localState(dir)
      expect(final.sources.shop?.resources).toEqual({
        orders: { runs: 1 },
        customers: { runs: 1 },
        snapshot: { runs: 1 }
      })
      expect(yield* countRows(shared, "orders", dir)).toBe(2)
      expect(yield* countRows(shared, "snapshot", dir)).toBe(3)
    })
  )

  it("takes named groups and lists of resources", () => {
    const named = Either.getOrThrow(Source.decompose(shop(), { sales: ["orders", "snapshot"], people: ["customers"] }))
    expect(named.map((g) => [g.name, g.resources])).toEqual([
      ["sales", ["orders", "snapshot"]],
      ["people", ["customers"]]
    ])
    const lists = Either.getOrThrow(Source.decompose(shop(), [["orders", "customers"], ["snapshot"]]))
    expect(lists.map((g) => [g.name, g.resources])).toEqual([
      ["orders+customers", ["orders", "customers"]],
      ["snapshot", ["snapshot"]]
    ])
    expect(lists[0]!.source.resourceNames).toEqual(Option.some(["orders", "customers"]))
  })

  it("checks that every resource is in exactly one group", () => {
    const reason = (groups: Source.Groups) => {
      const error = leftOf(Source.decompose(shop(), groups))
      return error._tag === "InvalidDecomposition" ? error.reason : error.message
    }
    expect(reason({ a: ["orders", "customers"], b: ["customers", "snapshot"] })).toBe(
      'resource "customers" is in groups "a" and "b"; every resource must be in exactly one group'
    )
    expect(reason({ a: ["orders", "customers"] })).toBe(
      'resources "snapshot" are in no group; every resource must be in exactly one group'
    )
    expect(reason({ a: ["orders", "customers", "snapshot"], b: [] })).toBe('group "b" has no resources')
    expect(reason([])).toBe("no groups given")
    expect(reason([["orders", "customers"], ["snapshot"], ["orders+customers"]])).toBe(
      'two groups are named "orders+customers"'
    )
    expect(reason({ a: ["orders", "customers", "snapshot", "products"] })).toBe(
      'source shop has no resource named "products"; its resources are: "orders", "customers", "snapshot"'
    )
  })

  it.scoped("a withSetup source needs named groups, checked against its resources when a group runs", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const shared = yield* Layer.memoize(Destination.memory())
      const dynamic = (tables: ReadonlyArray<string>) =>
        Source.withSetup({
          name: "shop",
          setup: Effect.succeed(tables),
          resources: (names) => names.map((t) => counting(t))
        })
      const error = leftOf(Source.decompose(dynamic(["orders"])))
      expect(error._tag).toBe("InvalidDecomposition")
      expect(error.message).toContain("known only after its setup")

      // disjointness is checked at once
      expect(leftOf(Source.decompose(dynamic(["orders"]), [["orders"], ["orders"]]))._tag).toBe("InvalidDecomposition")

      const groups = yield* Source.decompose(dynamic(["orders", "customers"]), { a: ["orders"], b: ["customers"] })
      expect((yield* runIn(dir, groups[1]!.source, shared)).tables).toEqual({ customers: 2 })

      // the source grew a resource no group has: every group refuses to run
      const grown = yield* Source.decompose(dynamic(["orders", "customers", "products"]), {
        a: ["orders"],
        b: ["customers"]
      })
      const exit = yield* Effect.exit(runIn(dir, grown[0]!.source, shared))
      expect(exit).toStrictEqual(
        Exit.fail(
          new Source.InvalidDecomposition({
            source: "shop",
            reason: 'resources "products" are in no group; every resource must be in exactly one group'
          })
        )
      )
      // a group naming a resource the source no longer has
      const shrunk = yield* Source.decompose(dynamic(["orders"]), { a: ["orders"], b: ["customers"] })
      const exit2 = yield* Effect.exit(runIn(dir, shrunk[0]!.source, shared))
      expect(exit2).toStrictEqual(
        Exit.fail(new Source.UnknownResources({ source: "shop", unknown: ["customers"], known: ["orders"] }))
      )
      expect(yield* countRows(shared, "orders", dir)).toBe(0)
    })
  )

  it.effect("listResources gives the names, running the setup only when they are not known before", () =>
    Effect.gen(function* () {
      let setups = 0
      const dynamic = Source.withSetup({
        name: "shop",
        setup: Effect.sync(() => {
          setups += 1
          return ["orders", "customers"]
        }),
        resources: (names) => names.map((t) => counting(t))
      })
      const services = Layer.merge(
        SourceState.layerScratch(),
        PipelineContext.layer({
          pipelineName: "p",
          datasetName: "ds",
          destinationName: "memory",
          firstRun: true,
          workingDir: "/nonexistent",
          dataset: Effect.die("not used")
        })
      )
      expect(yield* Source.listResources(shop()).pipe(Effect.provide(services))).toEqual([
        "orders",
        "customers",
        "snapshot"
      ])
      expect(
        yield* Source.listResources(Source.withResources(dynamic, ["customers"])).pipe(Effect.provide(services))
      ).toEqual(["customers"])
      expect(setups).toBe(1)
    })
  )
})
