/**
 * A typed state key whose stored value no longer matches its Schema fails the run with an error
 * that names a command resetting the value; the command, run as printed, does what it says: the
 * next run starts that key from its default.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema, Stream } from "effect"
import * as ResourceState from "../src/context/ResourceState.js"
import * as SourceState from "../src/context/SourceState.js"
import * as Destination from "../src/destination/index.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"
import * as Resource from "../src/pipeline/Resource.js"
import * as Source from "../src/pipeline/Source.js"
import { cli } from "./cli/inprocess.js"
import { tempDir } from "./helpers.js"

/** the words of a command line as a POSIX shell reads them (single quotes, as the messages print them) */
const words = (line: string): Array<string> =>
  [...line.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) =>
    m[1] !== undefined ? m[1].replaceAll("'\\''", "'") : (m[2] ?? "")
  )

/** a source whose resource keeps `cursor` and whose source state keeps `last sync` under `schema` */
const source = <A>(schema: Schema.Schema<A, A>, value: A, fallback: A) => {
  const Cursor = ResourceState.key("cursor", schema, () => fallback)
  const LastSync = SourceState.key("last sync", schema, () => fallback)
  return Source.make({
    name: "shop",
    resources: [
      Resource.make(
        { name: "orders" },
        Stream.unwrap(
          Effect.gen(function* () {
            const seen = yield* Cursor.get
            yield* Cursor.set(value)
            yield* LastSync.update(() => value)
            return Stream.make({ seen: String(seen) })
          })
        )
      )
    ]
  })
}

const failureOf = (effect: Effect.Effect<unknown, unknown>) =>
  Effect.map(Effect.flip(effect), (error) => error as { readonly _tag: string; readonly message: string })

describe("a typed key that no longer matches its Schema", () => {
  it.scopedLive("names a reset command that works as printed, for resource and source state", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("pipestate key dir ")
      const layers = Layer.mergeAll(
        Pipeline.layer({ name: "shop_pipeline", dataset: "shop_data", pipelinesDir: dir }),
        Destination.sqlite()
      ).pipe(Layer.provideMerge(NodeContext.layer))
      const run = <E>(src: Source.Source<E, never>) => Pipeline.run(src).pipe(Effect.provide(layers))
      yield* run(source(Schema.Number, 3, 0))

      // the resource's key changed type: the error names `drop orders --state-only`
      const first = yield* failureOf(run(source(Schema.String, "c", "none")))
      expect(first._tag).toBe("InvalidStateKeyValue")
      const command = /Reset it with `([^`]+)`/.exec(first.message)?.[1] ?? ""
      expect(command).toContain("drop orders --state-only")
      const argv = words(command)
      expect(argv.slice(0, 3)).toEqual(["pipestate", "pipeline", "shop_pipeline"])
      const reset = yield* cli(...argv.slice(1))
      expect(reset.err).toBe("")
      expect(reset.ok).toBe(true)

      // then the source state's key: its error names `drop --state-paths ['last sync']`
      const second = yield* failureOf(run(source(Schema.String, "c", "none")))
      expect(second._tag).toBe("InvalidStateKeyValue")
      const sourceCommand = /Reset it with `([^`]+)`/.exec(second.message)?.[1] ?? ""
      expect(sourceCommand).toContain("--state-paths")
      const resetSource = yield* cli(...words(sourceCommand).slice(1))
      expect(resetSource.err).toBe("")
      expect(resetSource.ok).toBe(true)

      // both keys start from their defaults now
      const after = yield* run(source(Schema.String, "c", "none"))
      expect(after.tables).toEqual({ orders: 1 })
      const state = yield* Pipeline.currentState.pipe(Effect.provide(layers))
      expect(state.sources.shop?.["last sync"]).toBe("c")
      expect(state.sources.shop?.resources).toEqual({ orders: { cursor: "c" } })
    })
  )
})
