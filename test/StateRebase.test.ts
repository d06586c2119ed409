import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Either } from "effect"
import * as fc from "fast-check"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateRebase from "../src/internal/state/StateRebase.js"
import * as StateValue from "../src/state/StateValue.js"

type Value = StateValue.StateValue
type Doc = PipelineState.PipelineState
type Mutable = Record<string, unknown>

const empty = PipelineState.empty({ pipelineName: "p", datasetName: "ds" })

const text = (value: unknown): string => Either.getOrThrow(StateValue.stringifySorted(value))

/** what the version hash covers: everything but the version fields and `_local` */
const content = (doc: Doc): string => Either.getOrThrow(PipelineState.versionHash(doc))

const rebase = (base: Doc, remote: Doc, draft: Doc, resets?: ReadonlyArray<StateRebase.ResourceRef>) =>
  StateRebase.rebase(resets === undefined ? { base, remote, draft } : { base, remote, draft, resets })

const rebased = (result: ReturnType<typeof rebase>): StateRebase.Rebased => {
  if (Either.isLeft(result)) throw new Error(`unexpected ${result.left._tag}: ${result.left.message}`)
  return result.right
}

const conflictPaths = (result: ReturnType<typeof rebase>): ReadonlyArray<string> => {
  if (Either.isRight(result)) throw new Error(`expected a conflict, got ${text(result.right.state.sources)}`)
  if (result.left._tag !== "RebaseConflict") throw result.left
  return result.left.paths
}

// ---------------------------------------------------------------------------------------------
// A model of documents and changes, written independently of the module: a change is a list of
// operations; the oracle reads every path of a small universe directly.
// ---------------------------------------------------------------------------------------------

const SOURCES = ["shop", "crm", "odd name"] as const
const SOURCE_KEYS = ["last_sync", "fields", "__proto__"] as const
const RESOURCES = ["orders", "customers", "snapshot", "odd-res"] as const
const TOP_KEYS = ["staging_name", "schema_names", "default_schema_name"] as const

const value: fc.Arbitrary<Value> = fc.oneof(
  fc.integer({ min: 0, max: 2 }),
  fc.constantFrom("x", "y"),
  fc.constant(null),
  fc.constantFrom(BigDecimal.unsafeFromString("1.5"), BigDecimal.unsafeFromString("1.50")),
  fc.constant(new Date(0)),
  fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 2 }),
  fc.record({ cursor: fc.integer({ min: 0, max: 2 }) })
)

type Op =
  | { readonly op: "setTop"; readonly key: string; readonly value: Value }
  | { readonly op: "delTop"; readonly key: string }
  | { readonly op: "setKey"; readonly source: string; readonly key: string; readonly value: Value }
  | { readonly op: "delKey"; readonly source: string; readonly key: string }
  | { readonly op: "setRes"; readonly source: string; readonly resource: string; readonly value: Value }
  | { readonly op: "delRes"; readonly source: string; readonly resource: string }
  | { readonly op: "delSource"; readonly source: string }
  | { readonly op: "newSource"; readonly source: string }
  | { readonly op: "delResources"; readonly source: string }
  | { readonly op: "newResources"; readonly source: string }
  | { readonly op: "oddResources"; readonly source: string; readonly value: Value }

const source = fc.constantFrom(...SOURCES)
const op = (odd: boolean): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ op: fc.constant("setTop" as const), key: fc.constantFrom(...TOP_KEYS), value }),
    fc.record({ op: fc.constant("delTop" as const), key: fc.constantFrom(...TOP_KEYS) }),
    fc.record({ op: fc.constant("setKey" as const), source, key: fc.constantFrom(...SOURCE_KEYS), value }),
    fc.record({ op: fc.constant("delKey" as const), source, key: fc.constantFrom(...SOURCE_KEYS) }),
    {
      arbitrary: fc.record({
        op: fc.constant("setRes" as const),
        source,
        resource: fc.constantFrom(...RESOURCES),
        value
      }),
      weight: 3
    },
    fc.record({ op: fc.constant("delRes" as const), source, resource: fc.constantFrom(...RESOURCES) }),
    fc.record({ op: fc.constant("delSource" as const), source }),
    fc.record({ op: fc.constant("newSource" as const), source }),
    fc.record({ op: fc.constant("delResources" as const), source }),
    fc.record({ op: fc.constant("newResources" as const), source }),
    ...(odd ? [fc.record({ op: fc.constant("oddResources" as const), source, value: fc.constantFrom(5, "x") })] : [])
  )

const isObject = (v: unknown): v is Mutable =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date) && !BigDecimal.isBigDecimal(v)

const put = (record: Mutable, key: string, v: unknown) =>
  Object.defineProperty(record, key, { value: v, enumerable: true, writable: true, configurable: true })

/** applies operations to a deep copy of the model's parts that they touch */
const applyOps = (doc: Doc, ops: ReadonlyArray<Op>): Doc => {
  const out: Mutable = { ...doc }
  const sources: Mutable = { ...doc.sources }
  const slot = (name: string): Mutable => {
    const current = Object.hasOwn(sources, name) ? sources[name] : undefined
    const next: Mutable = isObject(current) ? { ...current } : {}
    put(sources, name, next)
    return next
  }
  const resources = (name: string): Mutable => {
    const s = slot(name)
    const current = Object.hasOwn(s, "resources") ? s.resources : undefined
    const next: Mutable = isObject(current) ? { ...current } : {}
    put(s, "resources", next)
    return next
  }
  for (const o of ops) {
    switch (o.op) {
      case "setTop":
        put(out, o.key, o.value)
        break
      case "delTop":
        delete out[o.key]
        break
      case "setKey":
        put(slot(o.source), o.key, o.value)
        break
      case "delKey":
        if (Object.hasOwn(sources, o.source)) delete slot(o.source)[o.key]
        break
      case "setRes":
        put(resources(o.source), o.resource, o.value)
        break
      case "delRes":
        if (Object.hasOwn(sources, o.source) && isObject((sources[o.source] as Mutable).resources)) {
          delete resources(o.source)[o.resource]
        }
        break
      case "delSource":
        delete sources[o.source]
        break
      case "newSource":
        slot(o.source)
        break
      case "delResources":
        if (Object.hasOwn(sources, o.source)) delete slot(o.source).resources
        break
      case "newResources":
        resources(o.source)
        break
      case "oddResources":
        put(slot(o.source), "resources", o.value)
        break
    }
  }
  out.sources = sources
  return out as unknown as Doc
}

/** a structural copy sharing no object with the original (what a document read from the destination is) */
const deepCopy = (v: unknown): unknown => {
  if (v instanceof Date) return new Date(v.getTime())
  if (BigDecimal.isBigDecimal(v)) return BigDecimal.make(v.value, v.scale)
  if (Array.isArray(v)) return v.map(deepCopy)
  if (isObject(v)) {
    const out: Mutable = {}
    for (const key of Object.keys(v)) put(out, key, deepCopy(v[key]))
    return out
  }
  return v
}

const seg = (name: string) => (/^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`)

/** every unit path of the universe and its value in a document (undefined when absent) */
const oracleUnits = (docs: ReadonlyArray<Doc>): ReadonlyArray<readonly [string, (doc: Doc) => unknown]> => {
  const get = (record: unknown, key: string) =>
    isObject(record) && Object.hasOwn(record, key) ? (record as Mutable)[key] : undefined
  const units: Array<readonly [string, (doc: Doc) => unknown]> = []
  for (const key of TOP_KEYS) units.push([key, (doc) => get(doc, key)])
  for (const s of SOURCES) {
    for (const key of SOURCE_KEYS) units.push([`sources${seg(s)}${seg(key)}`, (doc) => get(get(doc.sources, s), key)])
    const odd = docs.some((doc) => {
      const r = get(get(doc.sources, s), "resources")
      return r !== undefined && !isObject(r)
    })
    if (odd) units.push([`sources${seg(s)}.resources`, (doc) => get(get(doc.sources, s), "resources")])
    else {
      for (const r of RESOURCES) {
        units.push([`sources${seg(s)}.resources${seg(r)}`, (doc) => get(get(get(doc.sources, s), "resources"), r)])
      }
    }
  }
  return units
}

const sameValue = (a: unknown, b: unknown) => (a === undefined || b === undefined ? a === b : text(a) === text(b))

const oracleChanged = (base: Doc, next: Doc, all: ReadonlyArray<Doc>): ReadonlyArray<string> =>
  oracleUnits(all)
    .filter(([, read]) => !sameValue(read(base), read(next)))
    .map(([path]) => path)
    .sort()

const baseDoc = (odd: boolean) => fc.array(op(odd), { maxLength: 12 }).map((ops) => applyOps(empty, ops))
const scenario = (odd: boolean) =>
  baseDoc(odd).chain((base) =>
    fc
      .tuple(fc.constant(base), fc.array(op(odd), { maxLength: 5 }), fc.array(op(odd), { maxLength: 5 }))
      .map(([b, theirs, ours]) => ({ base: b, remote: applyOps(b, theirs), draft: applyOps(b, ours) }))
  )

// disjoint changes, made likely: each side works on its own sources
const disjointScenario = baseDoc(false).chain((base) =>
  fc.tuple(fc.array(op(false), { maxLength: 6 }), fc.array(op(false), { maxLength: 6 })).map(([a, b]) => ({
    base,
    remote: applyOps(
      base,
      a.filter((o) => "source" in o && o.source === "shop")
    ),
    draft: applyOps(
      base,
      b.filter((o) => !("source" in o) || o.source !== "shop")
    )
  }))
)

const runs = { numRuns: 500 }

describe("StateRebase.rebase (properties)", () => {
  it("reports a conflict exactly when both sides changed a common path, naming those paths", () => {
    for (const odd of [false, true]) {
      fc.assert(
        fc.property(scenario(odd), ({ base, remote, draft }) => {
          const all = [base, remote, draft]
          const ours = oracleChanged(base, draft, all)
          const theirs = oracleChanged(base, remote, all)
          const common = ours.filter((p) => theirs.includes(p))
          const result = rebase(base, remote, draft)
          if (common.length > 0) {
            expect(conflictPaths(result)).toEqual(common)
          } else {
            const r = rebased(result)
            expect(r.ours).toEqual(ours)
            expect(r.theirs).toEqual(theirs)
          }
        }),
        runs
      )
    }
  })

  it("without a conflict, every unit holds the draft's value where this run changed it, else the remote's", () => {
    for (const odd of [false, true]) {
      fc.assert(
        fc.property(scenario(odd), ({ base, remote, draft }) => {
          const result = rebase(base, remote, draft)
          if (Either.isLeft(result)) return
          const { state, ours } = result.right
          for (const [path, read] of oracleUnits([base, remote, draft, state])) {
            const expected = ours.includes(path) ? read(draft) : read(remote)
            expect([path, sameValue(read(state), expected)]).toEqual([path, true])
          }
        }),
        runs
      )
    }
  })

  it("disjoint changes commute", () => {
    fc.assert(
      fc.property(fc.oneof(disjointScenario, scenario(false), scenario(true)), ({ base, remote, draft }) => {
        const one = rebase(base, remote, draft)
        const other = rebase(base, draft, remote)
        expect(Either.isLeft(one)).toBe(Either.isLeft(other))
        if (Either.isRight(one) && Either.isRight(other)) {
          expect(content(one.right.state)).toBe(content(other.right.state))
        }
      }),
      runs
    )
  })

  it("rebasing onto the state it started from gives the draft's content", () => {
    fc.assert(
      fc.property(scenario(true), ({ base, draft }) => {
        const copy = deepCopy(base) as Doc
        for (const remote of [base, copy]) {
          const r = rebased(rebase(base, remote, draft))
          expect(content(r.state)).toBe(content(draft))
          expect(r.theirs).toEqual([])
        }
      }),
      runs
    )
  })

  it("a draft that changed nothing gives the remote's content, which bumpVersion leaves as it is", () => {
    fc.assert(
      fc.property(scenario(true), ({ base, remote }) => {
        const remoteHashed = Either.getOrThrow(PipelineState.bumpVersion({ ...remote, _state_version: 7 }))
        const r = rebased(rebase(base, remoteHashed, base))
        expect(r.ours).toEqual([])
        expect(content(r.state)).toBe(content(remoteHashed))
        const bumped = Either.getOrThrow(PipelineState.bumpVersion(r.state))
        expect(bumped._state_version).toBe(7)
        expect(bumped._version_hash).toBe(remoteHashed._version_hash)
      }),
      runs
    )
  })
})

describe("StateRebase.rebase (cases)", () => {
  const withRes = (doc: Doc, resource: string, slot: PipelineState.Slot) =>
    PipelineState.withResourceSlot(doc, "shop", resource, slot)
  const withKey = (doc: Doc, key: string, v: Value) =>
    PipelineState.withSourceSlot(doc, "shop", { ...PipelineState.getSourceSlot(doc, "shop"), [key]: v })
  const hashed = (doc: Doc) => Either.getOrThrow(PipelineState.bumpVersion(doc))

  const v3 = hashed({ ...withRes(empty, "orders", { cursor: 1 }), _state_version: 3 })

  it("merges two runs that changed different resources, and the commit's bump gives remote + 1", () => {
    const remote = hashed({ ...withRes(v3, "customers", { cursor: 9 }) })
    expect(remote._state_version).toBe(4)
    const draft = withRes(v3, "orders", { cursor: 2 })
    const r = rebased(rebase(v3, remote, draft))
    expect(r.ours).toEqual(["sources.shop.resources.orders"])
    expect(r.theirs).toEqual(["sources.shop.resources.customers"])
    expect(r.state.sources.shop?.resources).toEqual({ orders: { cursor: 2 }, customers: { cursor: 9 } })
    expect(r.state._state_version).toBe(4)
    expect(r.state._version_hash).toBe(remote._version_hash)
    const next = Either.getOrThrow(PipelineState.bumpVersion(r.state))
    expect(next._state_version).toBe(5)
  })

  it("names the overlapping resource slots and source-state keys", () => {
    const remote = withKey(withRes(v3, "orders", { cursor: 5 }), "last_sync", "2026-01-01")
    const draft = withKey(withKey(withRes(v3, "orders", { cursor: 2 }), "last_sync", "2026-01-02"), "fields", ["a"])
    const result = rebase(v3, remote, draft)
    expect(conflictPaths(result)).toEqual(["sources.shop.last_sync", "sources.shop.resources.orders"])
    if (Either.isLeft(result) && result.left._tag === "RebaseConflict") {
      expect(result.left.message).toBe(
        "pipeline p: this run and another run both changed sources.shop.last_sync, sources.shop.resources.orders since state version 3 (the destination is now at version 3); nothing was written. Run again to start from the new state, or split the work so that each run changes its own resources' state (Source.decompose)."
      )
    }
  })

  it("two runs that made the same change still conflict (a lost update otherwise)", () => {
    const both = withRes(v3, "orders", { cursor: 2 })
    expect(conflictPaths(rebase(v3, both, both))).toEqual(["sources.shop.resources.orders"])
  })

  it("a reset of a replace resource counts as a change of its slot, even to the base's value", () => {
    // the other run wrote the replace resource's state; this run replaced its table and wrote none
    const remote = withRes(v3, "snapshot", { taken: 2 })
    expect(rebased(rebase(v3, remote, v3)).state.sources.shop?.resources).toHaveProperty("snapshot")
    expect(conflictPaths(rebase(v3, remote, v3, [{ source: "shop", resource: "snapshot" }]))).toEqual([
      "sources.shop.resources.snapshot"
    ])
    // reset and rewritten to the very value the base held, while the other run left it alone
    const base = withRes(v3, "snapshot", { taken: 1 })
    const other = withRes(base, "customers", {})
    const r = rebased(rebase(base, other, base, [{ source: "shop", resource: "snapshot" }]))
    expect(r.ours).toEqual(["sources.shop.resources.snapshot"])
    expect(r.state.sources.shop?.resources).toEqual({ orders: { cursor: 1 }, snapshot: { taken: 1 }, customers: {} })
    // a reset slot that ends up absent is removed from the other run's document
    const later = withRes(base, "customers", {})
    const gone = PipelineState.withoutResourceSlot(base, "shop", "snapshot")
    const r2 = rebased(rebase(base, later, gone, [{ source: "shop", resource: "snapshot" }]))
    expect(r2.state.sources.shop?.resources).toEqual({ orders: { cursor: 1 }, customers: {} })
  })

  it("a value that changes only its spelling (Decimal 1.5 → 1.50) is a change and keeps its digits", () => {
    const base = withRes(v3, "orders", { price: BigDecimal.unsafeFromString("1.5") })
    const draft = withRes(base, "orders", { price: BigDecimal.unsafeFromString("1.50") })
    const remote = withRes(base, "customers", { n: 1 })
    const r = rebased(rebase(base, remote, draft))
    expect(r.ours).toEqual(["sources.shop.resources.orders"])
    expect(text(PipelineState.getResourceSlot(r.state, "shop", "orders"))).toBe('{"price":"\uf0261.50"}')
  })

  it("a slot rewritten with the same content in another key order is not a change", () => {
    const base = withRes(v3, "orders", { a: 1, b: { c: 2, d: 3 } })
    const draft = withRes(base, "orders", { b: { d: 3, c: 2 }, a: 1 })
    const remote = withRes(base, "orders", { a: 2, b: { c: 2, d: 3 } })
    const r = rebased(rebase(base, remote, draft))
    expect(r.ours).toEqual([])
    expect(PipelineState.getResourceSlot(r.state, "shop", "orders")).toEqual({ a: 2, b: { c: 2, d: 3 } })
  })

  it("eight runs from a first run, each writing its own resource, merge into one state with every slot", () => {
    const start = empty
    let committed = empty
    const names = ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"]
    for (const [i, name] of names.entries()) {
      // what a run changed (its resource slot, a shared key only one group writes); the commit sets
      // the metadata it derives (schema_names, ...) on the rebased state, after the rebase
      let draft = PipelineState.withResourceSlot(start, "shop", name, { cursor: i })
      if (i === 0) draft = PipelineState.withSourceSlot(draft, "shop", { ...draft.sources.shop, fields: ["a"] })
      const r = rebased(rebase(start, committed, draft))
      committed = Either.getOrThrow(
        PipelineState.bumpVersion({
          ...r.state,
          default_schema_name: r.state.default_schema_name ?? "shop",
          schema_names: [...new Set([...(r.state.schema_names ?? []), "shop"])]
        })
      )
    }
    expect(Object.keys(PipelineState.getResourceSlots(committed, "shop")).sort()).toEqual(names)
    expect(PipelineState.getSourceSlot(committed, "shop").fields).toEqual(["a"])
    expect(committed._state_version).toBe(7)
    // setting the derived metadata BEFORE the rebase makes every later first-run group conflict
    const early = { ...PipelineState.withResourceSlot(start, "shop", "r9", {}), schema_names: ["shop"] }
    expect(conflictPaths(rebase(start, committed, early))).toEqual(["schema_names"])
  })

  it("a slot one run removes while the other adds to it keeps the addition", () => {
    const base = withKey(v3, "last_sync", 1)
    const removed: Doc = { ...base, sources: {} }
    const added = withRes(base, "customers", { n: 1 })
    const r = rebased(rebase(base, added, removed))
    expect(r.ours).toEqual(["sources.shop.last_sync", "sources.shop.resources.orders"])
    expect(r.state.sources).toEqual({ shop: { resources: { customers: { n: 1 } } } })
    expect(content(r.state)).toBe(content(rebased(rebase(base, removed, added)).state))
  })

  it("keeps the draft's _local, the remote's version fields, and unusual names spelled as paths", () => {
    const base = PipelineState.withResourceSlot(v3, "odd name", "__proto__", { a: 1 })
    const draft = PipelineState.withLocal(PipelineState.withResourceSlot(base, "odd name", "__proto__", { a: 2 }), {
      first_run: false,
      _last_extracted_hash: "h"
    })
    const remote = hashed({ ...withRes(base, "customers", {}), staging_name: "s" })
    const r = rebased(rebase(base, remote, draft))
    expect(r.ours).toEqual(['sources["odd name"].resources.__proto__'])
    expect(r.theirs).toEqual(["sources.shop.resources.customers", "staging_name"])
    expect(r.state._local).toBe(draft._local)
    expect(r.state._version_hash).toBe(remote._version_hash)
    expect(Object.hasOwn(PipelineState.getResourceSlots(r.state, "odd name"), "__proto__")).toBe(true)
    expect(PipelineState.getResourceSlot(r.state, "odd name", "__proto__")).toEqual({ a: 2 })
    expect(r.state.staging_name).toBe("s")
  })

  it("changedPaths lists what a run changed, resets included", () => {
    const draft = withKey(withRes(v3, "orders", { cursor: 2 }), "last_sync", 1)
    expect(StateRebase.changedPaths(v3, draft, [{ source: "shop", resource: "snapshot" }])).toEqual(
      Either.right(["sources.shop.last_sync", "sources.shop.resources.orders", "sources.shop.resources.snapshot"])
    )
  })
})
