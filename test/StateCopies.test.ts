import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Cause, Effect, Either, Exit, Layer, Option, Ref, Schema, Stream } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as SourceState from "../src/context/SourceState.js"
import * as StateSlot from "../src/internal/context/StateSlot.js"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import { tempDir } from "./helpers.js"

const draft = () => Ref.make(PipelineState.empty({ pipelineName: "p", datasetName: "d" }))

type Mutable = { [key: string]: unknown }

describe("state values are copies (slot level)", () => {
  it.effect("get returns a copy: changing it changes no state", () =>
    Effect.gen(function* () {
      const ref = yield* draft()
      const slot = ResourceState.make(ref, "s", "r")
      yield* slot.set("v", { list: [1, 2], at: new Date(0), bytes: new Uint8Array([1]) })
      const got = Option.getOrThrow(yield* slot.get("v")) as Mutable
      ;(got.list as Array<number>).push(3)
      ;(got.at as Date).setTime(5)
      ;(got.bytes as Uint8Array)[0] = 9
      got.extra = true
      const again = Option.getOrThrow(yield* slot.get("v"))
      expect(again).toEqual({ list: [1, 2], at: new Date(0), bytes: new Uint8Array([1]) })
      expect((yield* Ref.get(ref)).sources.s?.resources).toEqual({
        r: { v: { list: [1, 2], at: new Date(0), bytes: new Uint8Array([1]) } }
      })
      const all = (yield* slot.toJSON) as Mutable
      ;(all.v as Mutable).list = []
      expect(Option.getOrThrow(yield* slot.get("v"))).toMatchObject({ list: [1, 2] })
    })
  )

  it.effect("set stores a copy: a value changed after set changes no state and cannot escape validation", () =>
    Effect.gen(function* () {
      const ref = yield* draft()
      const slot = SourceState.make(ref, "s")
      const value: Mutable = { n: 1, nested: { list: ["a"] } }
      yield* slot.set("v", value)
      value.n = 2
      ;((value.nested as Mutable).list as Array<unknown>).push(new Map())
      value.fn = () => 1
      expect(Option.getOrThrow(yield* slot.get("v"))).toEqual({ n: 1, nested: { list: ["a"] } })
      expect(Either.isRight(StateSlot.validateDraft(yield* Ref.get(ref)))).toBe(true)
    })
  )

  it.effect("update hands f a copy and stores a copy of its result", () =>
    Effect.gen(function* () {
      const ref = yield* draft()
      const slot = ResourceState.make(ref, "s", "r")
      yield* slot.set("list", ["a"])
      let kept: Array<string> = []
      yield* slot.update("list", (current) => {
        const list = Option.getOrThrow(current) as Array<string>
        list.push("b") // dlt's pattern: change the value in place and keep it
        kept = list
        return list
      })
      kept.push("c")
      expect(Option.getOrThrow(yield* slot.get("list"))).toEqual(["a", "b"])
      const d = yield* slot.setDefault("list", [])
      ;(d as Array<string>).push("z")
      expect(Option.getOrThrow(yield* slot.get("list"))).toEqual(["a", "b"])
    })
  )

  it.effect("typed keys read and write copies too (a schema that keeps references)", () =>
    Effect.gen(function* () {
      const ref = yield* draft()
      const slot = ResourceState.make(ref, "s", "r")
      const Since = ResourceState.key("since", Schema.Struct({ at: Schema.DateFromSelf }), () => ({ at: new Date(0) }))
      const run = <A, E>(effect: Effect.Effect<A, E, ResourceState.ResourceState>) =>
        Effect.provideService(effect, ResourceState.ResourceState, slot)
      const mine = new Date(1000)
      yield* run(Since.set({ at: mine }))
      mine.setTime(2000)
      const got = yield* run(Since.get)
      expect(got.at.getTime()).toBe(1000)
      got.at.setTime(3000)
      expect((yield* run(Since.get)).at.getTime()).toBe(1000)
    })
  )

  it.effect("a read-only slot hands out frozen copies: changing one throws, and no state changes", () =>
    Effect.gen(function* () {
      const ref = yield* draft()
      yield* SourceState.make(ref, "s").set("fields", { names: ["a"], at: new Date(0) })
      const setup = SourceState.make(ref, "s", { readOnly: true })
      const got = Option.getOrThrow(yield* setup.get("fields")) as Mutable
      expect(() => {
        got.extra = 1
      }).toThrow(TypeError)
      expect(() => (got.names as Array<string>).push("b")).toThrow(TypeError)
      ;(got.at as Date).setTime(1) // a Date cannot be frozen, but it is a copy
      expect(Option.getOrThrow(yield* SourceState.make(ref, "s").get("fields"))).toEqual({
        names: ["a"],
        at: new Date(0)
      })
      expect(Object.isFrozen(yield* setup.toJSON)).toBe(true)
    })
  )

  it.effect("shares immutable values and reports circular values with their path", () =>
    Effect.gen(function* () {
      const ref = yield* draft()
      const slot = ResourceState.make(ref, "s", "r")
      const d = BigDecimal.unsafeFromString("1.50")
      yield* slot.set("d", { d })
      expect((Option.getOrThrow(yield* slot.get("d")) as Mutable).d).toBe(d)
      const cycle: Mutable = { a: 1 }
      cycle.self = cycle
      const error = yield* Effect.flip(slot.set("c", cycle))
      expect(error._tag).toBe("NonSerializableStateValue")
      expect(error.message).toContain("sources.s.resources.r.c")
      expect(Object.keys((yield* Ref.get(ref)).sources.s?.resources as object)).toEqual(["r"])
    })
  )

  it("validateDraft catches a draft changed by other means than a slot", () => {
    const state = PipelineState.empty({ pipelineName: "p", datasetName: "d" })
    const bad = { ...state, sources: { s: { v: new Map() as unknown as string } } }
    const result = StateSlot.validateDraft(bad)
    expect(Either.isLeft(result) && result.left.message).toContain("sources.s.v")
    expect(StateSlot.validateDraft(state)).toEqual(Either.right(state))
  })
})

// issue 9, item 6, through Pipeline.run
describe("state values are copies (through a run)", () => {
  const runIn = <E, R>(dir: string, source: Source.Source<E, R>, destination: Layer.Layer<Destination.Destination>) =>
    Pipeline.run(source).pipe(
      Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir })),
      Effect.provide(destination)
    )

  const writer = Source.make({
    name: "src",
    resources: [Resource.make({ name: "w" }, Stream.execute(SourceState.set("fields", { names: ["a"] })))]
  })

  it.scoped("a value from SourceState.get in setup, changed in place, commits no new state version", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const first = yield* runIn(dir, writer, destination)
      const mutating = Source.withSetup({
        name: "src",
        setup: Effect.map(SourceState.get("fields"), (fields) => {
          const value = Option.getOrThrow(fields) as { names: Array<string> }
          value.names.push("b")
          return value
        }),
        resources: () => [Resource.make({ name: "w" }, Stream.empty)]
      })
      const exit = yield* Effect.exit(runIn(dir, mutating, destination))
      // setup is read-only all the way down: the change throws (it used to commit a new version)
      expect(Exit.isFailure(exit) && Cause.pretty(exit.cause)).toContain("TypeError")
      const state = yield* Pipeline.currentState.pipe(
        Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir })),
        Effect.provide(destination)
      )
      expect(state._state_version).toBe(first.stateVersionAfter)
      expect(state.sources.src?.fields).toEqual({ names: ["a"] })
    })
  )

  it.scoped("a value from get in a resource, changed without set, commits nothing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      yield* runIn(dir, writer, destination)
      const reader = Source.make({
        name: "src",
        resources: [
          Resource.make(
            { name: "r" },
            Stream.execute(
              Effect.map(SourceState.get("fields"), (fields) => {
                ;(Option.getOrThrow(fields) as { names: Array<string> }).names.push("b")
              })
            )
          )
        ]
      })
      const second = yield* runIn(dir, reader, destination)
      expect(second.stateChanged).toBe(false)
      expect(second.loadId).toBeNull()
    })
  )

  it.scoped("a value changed after set commits as it was set", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const destination = yield* Layer.memoize(Destination.memory())
      const source = Source.make({
        name: "src",
        resources: [
          Resource.make(
            { name: "r" },
            Stream.execute(
              Effect.gen(function* () {
                const value: Mutable = { n: 1 }
                yield* ResourceState.set("v", value)
                value.n = 2
                value.bad = new Map() // would fail the commit if it reached the state
              })
            )
          )
        ]
      })
      const summary = yield* runIn(dir, source, destination)
      expect(summary.stateChanged).toBe(true)
      const state = yield* Pipeline.currentState.pipe(
        Effect.provide(Pipeline.layerNode({ name: "p", dataset: "ds", pipelinesDir: dir })),
        Effect.provide(destination)
      )
      expect(state.sources.src?.resources).toEqual({ r: { v: { n: 1 } } })
    })
  )
})
