/**
 * Every stage of a run is a span with the attributes an operator needs (pipeline, dataset,
 * destination, rows, state version), recorded here by a test tracer; the README shows the same
 * spans exported with @effect/opentelemetry.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema, Stream, Tracer } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as Destination from "../src/destination/index.js"
import * as Drop from "../src/pipeline/Drop.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import { tempDir } from "./helpers.js"

interface Recorded {
  readonly name: string
  readonly parent: string | undefined
  readonly attributes: ReadonlyMap<string, unknown>
}

/** a tracer that keeps every ended span with its parent's name */
const recording = (spans: Array<Recorded>): Tracer.Tracer => {
  let next = 0
  return Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: `s${++next}`,
        traceId: "t",
        parent,
        context,
        get status() {
          return status
        },
        attributes,
        links,
        sampled: true,
        kind,
        end: (endTime, exit) => {
          status = { _tag: "Ended", startTime, endTime, exit }
          const parentName = Option.match(parent, {
            onNone: () => undefined,
            onSome: (p) => (p._tag === "Span" ? p.name : undefined)
          })
          spans.push({ name, parent: parentName, attributes })
        },
        attribute: (key, value) => void attributes.set(key, value),
        event: () => undefined,
        addLinks: () => undefined
      }
      return span
    },
    context: (f) => f()
  })
}

const Seen = ResourceState.key("seen", Schema.Number, () => 0)

const source = Source.make({
  name: "shop",
  resources: [
    Resource.make(
      { name: "orders" },
      Stream.unwrap(Effect.as(Seen.set(3), Stream.fromIterable([1, 2, 3].map((id) => ({ id })))))
    ),
    Resource.make({ name: "customers" }, Stream.fromIterable([{ id: 1 }]))
  ]
})

describe("tracing", () => {
  it.scoped("a run is a span tree: run → restore, extract per resource → normalize, commit, persist", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const spans: Array<Recorded> = []
      const layers = Layer.mergeAll(
        Pipeline.layer({ name: "traced", dataset: "traced_data", pipelinesDir: dir }),
        Destination.sqlite()
      ).pipe(Layer.provideMerge(NodeContext.layer))
      const summary = yield* Pipeline.run(source).pipe(Effect.provide(layers), Effect.withTracer(recording(spans)))
      const named = (name: string) => spans.filter((s) => s.name === name)

      const [run] = named("pipestate.run")
      expect(run?.attributes.get("pipestate.pipeline")).toBe("traced")
      expect(run?.attributes.get("pipestate.dataset")).toBe("traced_data")
      expect(run?.attributes.get("pipestate.destination")).toBe("sqlite")

      expect(named("pipestate.restore").map((s) => s.parent)).toEqual(["pipestate.run"])
      const extracts = named("pipestate.extract")
      expect(extracts.map((s) => s.attributes.get("pipestate.resource")).sort()).toEqual(["customers", "orders"])
      expect(extracts.every((s) => s.parent === "pipestate.run")).toBe(true)
      const orders = extracts.find((s) => s.attributes.get("pipestate.resource") === "orders")
      expect(orders?.attributes.get("pipestate.rows")).toBe(3)
      expect(named("pipestate.normalize").every((s) => s.parent === "pipestate.extract")).toBe(true)

      const [commit] = named("pipestate.commit")
      expect(commit?.parent).toBe("pipestate.run")
      expect(commit?.attributes.get("pipestate.load_id")).toBe(summary.loadId)
      expect(commit?.attributes.get("pipestate.state_version")).toBe(summary.stateVersionAfter)
      expect(commit?.attributes.get("pipestate.state_changed")).toBe(true)
      // the driver's own statements are children of the commit (the transaction)
      expect(spans.some((s) => s.name === "sql.transaction" && s.parent === "pipestate.commit")).toBe(true)
      expect(named("pipestate.persist").map((s) => s.parent)).toEqual(["pipestate.run"])
    })
  )

  it.scoped("drop and restore are spans too", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const spans: Array<Recorded> = []
      const layers = Layer.mergeAll(
        Pipeline.layer({ name: "traced", dataset: "traced_data", pipelinesDir: dir }),
        Destination.sqlite()
      ).pipe(Layer.provideMerge(NodeContext.layer))
      yield* Pipeline.run(source).pipe(Effect.provide(layers))
      yield* Drop.apply({ resources: ["orders"] }).pipe(Effect.provide(layers), Effect.withTracer(recording(spans)))
      const names = spans.map((s) => s.name)
      expect(names).toContain("pipestate.drop")
      expect(spans.find((s) => s.name === "pipestate.commit")?.parent).toBe("pipestate.drop")
    })
  )
})
