import { deflateSync, inflateSync } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Effect, Either } from "effect"
import { empty, type PipelineState, withResourceSlot } from "../src/internal/state/PipelineState.js"
import { decode, encode, InvalidStateBlob } from "../src/internal/state/StateBlob.js"
import {
  equals,
  formatJson,
  HexBytes,
  makeUuid,
  parseJson,
  type StateValue,
  Timestamp
} from "../src/state/StateValue.js"

const asValue = (state: PipelineState): StateValue => state as unknown as StateValue

const state: PipelineState = {
  ...withResourceSlot(empty({ pipelineName: "chess_pipeline", datasetName: "chess_data" }), "chess", "players_games", {
    archives: ["https://api.chess.com/pub/player/magnus/games/2024/01"],
    amount: BigDecimal.unsafeFromString("10.50"),
    at: new Date("2024-01-01T08:00:00.123Z"),
    bytes: new Uint8Array([0, 1, 254, 255]),
    id: Either.getOrThrow(makeUuid("6f9619ff-8b86-d011-b42d-00c04fc964ff"))
  }),
  _state_version: 4,
  _version_hash: "abc=",
  destination_type: "dlt.destinations.postgres",
  destination_name: "postgres",
  _local: { first_run: true, _last_extracted_hash: "local only" }
}

const expectInvalid = (blob: string): InvalidStateBlob => {
  const result = decode(blob, { pipelineName: "chess_pipeline" })
  if (Either.isRight(result)) throw new Error(`expected ${JSON.stringify(blob)} to be invalid`)
  expect(result.left).toBeInstanceOf(InvalidStateBlob)
  expect(result.left.message).toContain('pipeline "chess_pipeline"')
  return result.left
}

describe("StateBlob", () => {
  it("round trips, without _local, which comes back as not-first-run", () => {
    const blob = Either.getOrThrow(encode(state))
    expect(blob).toMatch(/^[A-Za-z0-9+/]+=*$/)
    const text = inflateSync(Buffer.from(blob, "base64")).toString("utf8")
    expect(text).not.toContain("_local")
    expect(text).not.toContain("local only")
    expect(text.startsWith('{"_state_version":4,')).toBe(true)
    const back = Either.getOrThrow(decode(blob))
    expect(back._local).toEqual({ first_run: false })
    expect(equals(asValue(back), asValue({ ...state, _local: { first_run: false } }))).toBe(true)
  })

  it("is zlib (RFC 1950) compressed at level 9", () => {
    const blob = Either.getOrThrow(encode(state))
    const bytes = Buffer.from(blob, "base64")
    expect(bytes[0]).toBe(0x78)
    expect(bytes[1]).toBe(0xda) // the zlib header of level 9
  })

  it("writes the same typed JSON as dlt: a blob made with Python's orjson + zlib.compress(level=9)", () => {
    const doc: PipelineState = {
      _state_version: 1,
      _state_engine_version: 4,
      _version_hash: "abc=",
      pipeline_name: "p",
      dataset_name: "d",
      sources: {
        s: {
          resources: {
            r: {
              amount: BigDecimal.unsafeFromString("1.50"),
              blob: new Uint8Array([0, 1, 254, 255]),
              names: ["a", "é"]
            }
          }
        }
      },
      _local: { first_run: false }
    }
    const python =
      "eNqrVoovLkksSY0vSy0qzszPU7Iy1IEJpealZ+YhyZgAZaCc+IzE4gwlK6XEpGRbJR2lgsyC1ByQ2rzE3FSgcAFQLCWxJLE4tQQmlAIUKs4vLUpOLVayqlYCE0WpSCJFICIxN780rwSo/H3DMkM9UwOgpqSc/CSwwGpHRw9t/XJbkIUgQ4G6opUSgZzDK5Via0EAAMwQRnQ="
    // zlib implementations differ in their bytes (Node's is Chromium's), not in what they inflate to;
    // our text has the version fields first, the rest in document order (here: dlt's order too)
    const ours = inflateSync(Buffer.from(Either.getOrThrow(encode(doc)), "base64")).toString("utf8")
    const theirs = inflateSync(Buffer.from(python, "base64")).toString("utf8")
    expect(ours).toBe(theirs)
    const sorted = (text: string) => formatJson(Either.getOrThrow(parseJson(text)), { sortKeys: true })
    expect(sorted(ours)).toBe(sorted(theirs))
    expect(equals(asValue(Either.getOrThrow(decode(python))), asValue(doc))).toBe(true)
  })

  it("decodes a dlt blob written by Python (pendulum datetime with microseconds and offset)", () => {
    const python =
      "eNpdj01ugzAQhe/ibQK1qYMCUhbZ9QDdVZU1gA1IYBBjEkWoUk/TqurheoWOE6JCrVl4vvfmb2IKHTitTnrAurMslds70ras7T9lTlQFWLGUQZazLevrXjfeaqHVRPNKI6o7JUMBDlC7te6h17SBsXEKibawspC6oMjSl5m/+jJ0tQXnl3GX3tcUjQsXGMO+Q1cOGtnaPo9YqNiNQ+4HTPMA+pDyR/sGLnS5Km97TAzabrSOuvy8fwge7jh1gVv+GfFIBlxQPAuech+hiB7lLt7wiBKyZk2XXc3fx+PT5uF8OBCsiyv6ik0Si8SYYJ/t46DgQgSZjIqA85xLkyexNIa9+fcLRKOX1A=="
    const expected: PipelineState = {
      _state_version: 4,
      _state_engine_version: 4,
      _version_hash: "abc",
      pipeline_name: "chess_pipeline",
      dataset_name: "chess_data",
      default_schema_name: "chess",
      schema_names: ["chess"],
      destination_type: "dlt.destinations.postgres",
      destination_name: "postgres",
      sources: {
        chess: {
          resources: {
            players_games: {
              amount: BigDecimal.unsafeFromString("10.50"),
              at: Either.getOrThrow(Timestamp.parse("2024-01-01T10:00:00.123456+02:00")),
              blob: new Uint8Array([0, 1, 254, 255]),
              id: Either.getOrThrow(makeUuid("6f9619ff-8b86-d011-b42d-00c04fc964ff"))
            }
          }
        }
      },
      _local: { first_run: false }
    }
    expect(equals(asValue(Either.getOrThrow(decode(python))), asValue(expected))).toBe(true)
  })

  it("decodes a blob built by hand as dlt builds it", () => {
    const typedJson =
      '{"_state_version":7,"_state_engine_version":4,"_version_hash":"h=","pipeline_name":"chess_pipeline",' +
      '"dataset_name":"chess_data","default_schema_name":null,"schema_names":["chess"],' +
      '"destination_type":"dlt.destinations.duckdb","destination_name":"duckdb","staging_name":null,' +
      '"sources":{"chess":{"resources":{"players_games":{' +
      '"total":"\uF0261234.5600",' +
      '"since":"\uF0272024-03-01T12:30:00.250000+00:00",' +
      '"raw":"\uF02BaGVsbG8=",' +
      '"hex":"\uF02A0x0102",' +
      '"run":"\uF0296F9619FF-8B86-D011-B42D-00C04FC964FF",' +
      '"day":"\uF0282024-02-29",' +
      '"not_a_date":"\uF0282024-02-30"' +
      "}}}}}"
    const blob = deflateSync(Buffer.from(typedJson, "utf8"), { level: 9 }).toString("base64")
    const decoded = Either.getOrThrow(decode(blob))
    expect(decoded._state_version).toBe(7)
    expect(decoded.staging_name).toBeNull()
    expect(decoded.default_schema_name).toBeNull()
    expect(decoded._local).toEqual({ first_run: false })
    const slot = decoded.sources.chess!.resources as Record<string, Record<string, StateValue>>
    const r = slot.players_games!
    expect(equals(r.total!, BigDecimal.unsafeFromString("1234.5600"))).toBe(true)
    expect(String(r.since)).toBe("2024-03-01T12:30:00.250000+00:00")
    expect(r.raw).toEqual(new Uint8Array(Buffer.from("hello")))
    expect(r.hex).toBeInstanceOf(HexBytes)
    expect([...(r.hex as Uint8Array)]).toEqual([1, 2])
    expect(r.run).toEqual(Either.getOrThrow(makeUuid("6f9619ff-8b86-d011-b42d-00c04fc964ff")))
    expect(r.day).toMatchObject({ _tag: "CalendarDate", iso: "2024-02-29" })
    expect(r.not_a_date).toBe("\uF0282024-02-30")
  })

  it("reads a legacy uncompressed blob as typed JSON", () => {
    const legacy =
      '{"_state_version":2,"_state_engine_version":4,"pipeline_name":"p","dataset_name":"d",' +
      '"sources":{"s":{"n":"\uF0261.5"}}}'
    const decoded = Either.getOrThrow(decode(legacy))
    expect(decoded._state_version).toBe(2)
    expect(equals(decoded.sources.s!.n!, BigDecimal.unsafeFromString("1.5"))).toBe(true)
    expect(decoded._local).toEqual({ first_run: false })
  })

  it("reads a legacy blob of an older engine, upgrading it", () => {
    const legacy = JSON.stringify({
      _state_version: 2,
      _state_engine_version: 3,
      _version_hash: "x",
      pipeline_name: "p",
      dataset_name: "d",
      destination: "dlt.destinations.bigquery"
    })
    const decoded = Either.getOrThrow(decode(legacy))
    // as dlt: a *_name equal to its type's last part becomes null
    expect(decoded.destination_name).toBeNull()
    expect(decoded._state_engine_version).toBe(4)
  })

  it("rejects garbage with InvalidStateBlob", () => {
    expect(expectInvalid("").reason).toContain("neither base64 nor JSON")
    expect(expectInvalid("not a state at all").reason).toContain("neither base64 nor JSON")
    expect(expectInvalid("AAAA").reason).toContain("not zlib")
    const truncated = Either.getOrThrow(encode(state)).slice(0, 40)
    expect(expectInvalid(truncated).reason).toContain("not zlib")
    expect(expectInvalid(deflateSync(Buffer.from([0xff, 0xfe, 0x00])).toString("base64")).reason).toContain("UTF-8")
    expect(expectInvalid(deflateSync(Buffer.from("[1,2]")).toString("base64")).reason).toContain("JSON object")
    expect(expectInvalid('{"pipeline_name":"p"}').reason).toContain("_state_engine_version")
    expect(expectInvalid('{"_state_version":1,"_state_engine_version":4,"pipeline_name":"p"}').reason).toContain(
      "dataset_name"
    )
    const noContext = decode("garbage")
    expect(Either.isLeft(noContext) && noContext.left.message).toContain("a pipeline")
  })

  it.effect("encode and decode are yieldable in Effect.gen", () =>
    Effect.gen(function* () {
      const blob = yield* encode(state)
      const back = yield* decode(blob)
      expect(back.pipeline_name).toBe("chess_pipeline")
    })
  )
})
