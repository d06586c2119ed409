/**
 * Bad input never crashes or hangs: every decoder returns a value or a typed error, over at least
 * 10,000 random inputs each.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Zlib from "node:zlib"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import * as fc from "fast-check"
import * as WorkingDir from "../src/internal/pipeline/WorkingDir.js"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import * as StatePath from "../src/internal/state/StatePath.js"
import * as StateValue from "../src/state/StateValue.js"
import { makeTempDir } from "./helpers.js"

const RUNS = 10_000

/** strings that look like what the decoders expect, mutated: typed-JSON markers, JSON punctuation */
const jsonish = fc.stringOf(
  fc.constantFrom(
    "{",
    "}",
    "[",
    "]",
    '"',
    ":",
    ",",
    "\\",
    "\uf026",
    "\uf027",
    "\uf028",
    "\uf029",
    "\uf02a",
    "\uf02b",
    "\uf02d",
    "1",
    ".",
    "e",
    "-",
    "a",
    "null",
    "true",
    "2024-01-01T00:00:00Z",
    "_state_version",
    "sources"
  ),
  { maxLength: 60 }
)

const anyText = fc.oneof(fc.string(), fc.fullUnicodeString(), jsonish)

const isTyped = (either: Either.Either<unknown, unknown>, tag: string): boolean =>
  Either.isRight(either) || (either.left as { _tag?: string })._tag === tag

describe("bad input fuzzing", () => {
  it("the state value decoder returns a value or InvalidTypedJson", () => {
    fc.assert(
      fc.property(anyText, (text) => isTyped(StateValue.parse(text), "InvalidTypedJson")),
      { numRuns: RUNS }
    )
  })

  it("the typed-JSON value decoder accepts any JSON without throwing", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (json) => {
        StateValue.decode(json as StateValue.Json)
        return true
      }),
      { numRuns: RUNS }
    )
  })

  it("the state blob decoder returns a state or InvalidStateBlob", () => {
    const blobs = fc.oneof(
      anyText,
      fc.base64String(),
      fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString("base64")),
      fc.uint8Array({ maxLength: 200 }).map((bytes) => Zlib.deflateSync(bytes).toString("base64")),
      jsonish.map((text) => Zlib.deflateSync(Buffer.from(text)).toString("base64")),
      fc.jsonValue().map((json) => Zlib.deflateSync(Buffer.from(JSON.stringify(json))).toString("base64"))
    )
    fc.assert(
      fc.property(blobs, (blob) => isTyped(StateBlob.decode(blob), "InvalidStateBlob")),
      { numRuns: RUNS }
    )
  })

  it("the exact JSON parser accepts exactly what JSON.parse accepts", () => {
    const texts = fc.oneof(
      anyText,
      fc.jsonValue().map((json) => JSON.stringify(json)),
      fc.stringOf(fc.constantFrom("-", "0", "1", "9", ".", "e", "E", "+", "[", "]", ",", " ", "00", "1e999"), {
        maxLength: 20
      })
    )
    fc.assert(
      fc.property(texts, (text) => {
        let native = true
        try {
          const parsed: unknown = JSON.parse(text)
          // a number past the double range is Infinity for JSON.parse; dlt has no such value
          if (JSON.stringify(parsed)?.includes("null") && /\d[eE]\+?\d{3}/.test(text)) return true
        } catch {
          native = false
        }
        const ours = StateValue.parseJson(text)
        return Either.isRight(ours) === native && isTyped(ours, "InvalidTypedJson")
      }),
      { numRuns: RUNS }
    )
  })

  it("a marked string with any body decodes to a value that is written back as that string", () => {
    const marked = fc
      .tuple(fc.integer({ min: 0xf026, max: 0xf02e }), fc.oneof(jsonish, fc.fullUnicodeString({ maxLength: 40 })))
      .map(([mark, body]) => String.fromCharCode(mark) + body)
    fc.assert(
      fc.property(marked, (text) => {
        const value = StateValue.decode(text)
        const again = StateValue.encode(value)
        // what decodes is stored again; a canonical text comes back as itself
        if (Either.isLeft(again)) return false
        return StateValue.equals(StateValue.decode(again.right), value)
      }),
      { numRuns: RUNS }
    )
  })

  it("the encoder returns typed JSON or NonSerializableStateValue for any value, never throws", () => {
    const values = fc.oneof(
      fc.anything({
        withBigInt: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withTypedArray: true,
        withNullPrototype: true
      }),
      fc
        .tuple(fc.integer(), fc.integer(), fc.oneof(fc.integer(), fc.constant(null)))
        .map(([s, us, o]) => new StateValue.Timestamp(s, us, o)),
      fc.double().map((v) => new StateValue.Float(v)),
      fc.string().map((text) => new StateValue.SpecialDecimal({ text }))
    )
    fc.assert(
      fc.property(values, (value) => {
        const encoded = StateValue.encode(value)
        if (Either.isLeft(encoded)) return encoded.left._tag === "NonSerializableStateValue"
        const text = StateValue.formatJson(encoded.right)
        return Either.isRight(StateValue.parse(text)) && Either.isRight(StateValue.stringify(value, { sortKeys: true }))
      }),
      { numRuns: RUNS }
    )
  })

  it("the JSONPath parser returns a path or InvalidStatePath", () => {
    const paths = fc.oneof(
      anyText,
      fc.stringOf(fc.constantFrom("$", ".", "..", "[", "]", "*", "'", '"', "0", "-1", "a", "b_c", " "), {
        maxLength: 30
      })
    )
    fc.assert(
      fc.property(paths, (text) => isTyped(StatePath.parse(text), "InvalidStatePath")),
      { numRuns: RUNS }
    )
  })

  it("the state document loader returns a state or InvalidStateDocument", () => {
    const documents = fc.oneof(
      anyText,
      fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString("utf8")),
      fc
        .record({
          _state_version: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
          _state_engine_version: fc.oneof(fc.integer({ min: -1, max: 6 }), fc.string()),
          pipeline_name: fc.oneof(fc.string(), fc.integer()),
          dataset_name: fc.oneof(fc.string(), fc.constant(null)),
          sources: fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue())),
          _local: fc.oneof(fc.jsonValue(), fc.record({ first_run: fc.oneof(fc.boolean(), fc.string()) }))
        })
        .map((doc) => JSON.stringify(doc))
    )
    fc.assert(
      fc.property(documents, (text) => isTyped(PipelineState.fromFileText(text), "InvalidStateDocument")),
      { numRuns: RUNS }
    )
  })

  it.effect("the state.json loader fed random bytes reads a state or fails with CorruptStateFile", () =>
    Effect.gen(function* () {
      const pipelinesDir = makeTempDir()
      const workingDir = yield* WorkingDir.make({ pipelinesDir, pipelineName: "fuzz" })
      const samples = fc.sample(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          anyText.map((text) => new Uint8Array(Buffer.from(text)))
        ),
        { numRuns: RUNS, seed: 42 }
      )
      let corrupt = 0
      for (const bytes of samples) {
        NodeFs.writeFileSync(NodePath.join(workingDir.dir, "state.json"), bytes)
        const result = yield* Effect.either(workingDir.readState)
        if (Either.isLeft(result)) {
          expect(result.left._tag).toBe("CorruptStateFile")
          corrupt += 1
        } else {
          expect(Option.isSome(result.right)).toBe(true)
        }
      }
      NodeFs.rmSync(pipelinesDir, { recursive: true, force: true })
      expect(corrupt).toBeGreaterThan(RUNS * 0.9)
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
