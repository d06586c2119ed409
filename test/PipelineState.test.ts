import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { BigDecimal, Either, FastCheck as fc, Schema } from "effect"
import {
  bumpVersion,
  ENGINE_VERSION,
  empty,
  fromFileText,
  fromJson,
  getResourceSlot,
  getSourceSlot,
  InvalidStateDocument,
  type PipelineState,
  PipelineStateFromJson,
  toFileText,
  versionHash,
  withLocal,
  withoutResourceSlot,
  withResourceSlot,
  withSourceSlot
} from "../src/internal/state/PipelineState.js"
import { CalendarDate, equals, type Json, makeUuid, type StateValue, Timestamp } from "../src/state/StateValue.js"

const base = empty({ pipelineName: "chess_pipeline", datasetName: "chess_data" })

const hashOf = (state: PipelineState): string => Either.getOrThrow(versionHash(state))

const sha3 = (text: string): string => createHash("sha3-256").update(text, "utf8").digest("base64")

const expectInvalid = (result: Either.Either<PipelineState, InvalidStateDocument>): InvalidStateDocument => {
  if (Either.isRight(result)) throw new Error("expected an invalid document")
  expect(result.left).toBeInstanceOf(InvalidStateDocument)
  return result.left
}

const reversedKeys = (value: Json): Json => {
  if (value === null || typeof value !== "object") return value
  if (Array.isArray(value)) return (value as ReadonlyArray<Json>).map(reversedKeys)
  const record = value as { readonly [key: string]: Json }
  const out: Record<string, Json> = {}
  for (const key of Object.keys(record).reverse()) {
    Object.defineProperty(out, key, { value: reversedKeys(record[key]!), enumerable: true, writable: true })
  }
  return out
}

describe("PipelineState.empty", () => {
  it("is version 0 of engine 4, unhashed, first run, without sources", () => {
    expect(base).toEqual({
      _state_version: 0,
      _state_engine_version: 4,
      pipeline_name: "chess_pipeline",
      dataset_name: "chess_data",
      sources: {},
      _local: { first_run: true }
    })
    expect(ENGINE_VERSION).toBe(4)
  })
})

describe("PipelineState.versionHash", () => {
  const state: PipelineState = withResourceSlot(
    { ...base, schema_names: ["chess"], default_schema_name: "chess" },
    "chess",
    "players_games",
    { archives: ["a", "b"], cursor: { last_value: new Date("2024-01-01T00:00:00Z"), n: 3 } }
  )

  it("is stable under key order", () => {
    const reordered: PipelineState = {
      sources: {
        chess: {
          resources: {
            players_games: { cursor: { n: 3, last_value: new Date(Date.UTC(2024, 0, 1)) }, archives: ["a", "b"] }
          }
        }
      },
      default_schema_name: "chess",
      schema_names: ["chess"],
      dataset_name: "chess_data",
      pipeline_name: "chess_pipeline",
      _local: { first_run: true },
      _state_engine_version: 4,
      _state_version: 0
    }
    expect(hashOf(reordered)).toBe(hashOf(state))
  })

  it.prop(
    "is stable under key order of arbitrary source state",
    [fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 6 })],
    ([slot]) => {
      const a = withSourceSlot(base, "s", slot as { readonly [key: string]: Json })
      const b = withSourceSlot(base, "s", reversedKeys(slot as Json) as { readonly [key: string]: Json })
      expect(hashOf(a)).toBe(hashOf(b))
    }
  )

  it("ignores the version, the engine version, the previous hash and _local", () => {
    const h = hashOf(state)
    expect(hashOf({ ...state, _state_version: 42 })).toBe(h)
    expect(hashOf({ ...state, _state_engine_version: 3 })).toBe(h)
    expect(hashOf({ ...state, _version_hash: "previous" })).toBe(h)
    expect(hashOf(withLocal(state, { first_run: false, _last_extracted_hash: "x", initial_cwd: "/tmp" }))).toBe(h)
  })

  it("changes when the content changes", () => {
    const h = hashOf(state)
    expect(hashOf(withResourceSlot(state, "chess", "players_games", { archives: ["a"] }))).not.toBe(h)
    expect(hashOf({ ...state, dataset_name: "other" })).not.toBe(h)
    expect(hashOf({ ...state, staging_name: "s3" })).not.toBe(h)
    expect(hashOf(withSourceSlot(state, "other", {}))).not.toBe(h)
  })

  it("is sha3-256 over the sorted compact typed JSON, as written by hand", () => {
    const doc: PipelineState = {
      ...base,
      _state_version: 7,
      _version_hash: "ignored",
      sources: { s: { n: BigDecimal.unsafeFromString("1.50"), at: new Date("2024-01-01T00:00:00Z"), b: 1 } }
    }
    const text =
      '{"dataset_name":"chess_data","pipeline_name":"chess_pipeline",' +
      '"sources":{"s":{"at":"\uF0272024-01-01T00:00:00+00:00","b":1,"n":"\uF0261.50"}}}'
    expect(hashOf(doc)).toBe(sha3(text))
  })

  it("matches a hash computed with Python's orjson (sort_keys), as dlt computes it", () => {
    const doc: PipelineState = {
      _state_version: 3,
      _state_engine_version: 4,
      _version_hash: "x",
      _local: { first_run: false },
      pipeline_name: "chess_pipeline",
      dataset_name: "chess_data",
      default_schema_name: null,
      schema_names: ["chess"],
      destination_type: "dlt.destinations.postgres",
      destination_name: "postgres",
      sources: {
        chess: {
          resources: {
            players_games: {
              archives: ["https://api.chess.com/pub/player/magnus/games/2024/01", 'x\ny\t"q"\\ \u0001 é 日本'],
              "10": 1,
              "9": 2,
              "\uFFFF": 3,
              "\u{1F600}": 4,
              é: 5,
              amount: BigDecimal.unsafeFromString("1.50"),
              blob: new Uint8Array([0, 1, 254, 255]),
              id: Either.getOrThrow(makeUuid("6f9619ff-8b86-d011-b42d-00c04fc964ff")),
              day: new CalendarDate({ iso: "2024-01-31" }),
              ratio: 0.5,
              neg: -12,
              ok: true,
              none: null,
              empty: {},
              list: []
            }
          },
          player_count: 3
        }
      }
    }
    // dlt's hash input, spelled by hand as orjson writes it: keys by code point, a UUID as its
    // plain text, non-ASCII raw, control characters escaped
    const hashInput =
      '{"dataset_name":"chess_data","default_schema_name":null,"destination_name":"postgres",' +
      '"destination_type":"dlt.destinations.postgres","pipeline_name":"chess_pipeline","schema_names":["chess"],' +
      '"sources":{"chess":{"player_count":3,"resources":{"players_games":{"10":1,"9":2,' +
      '"amount":"\uF0261.50","archives":["https://api.chess.com/pub/player/magnus/games/2024/01",' +
      '"x\\ny\\t\\"q\\"\\\\ \\u0001 é 日本"],"blob":"\uF02BAAH+/w==","day":"\uF0282024-01-31","empty":{},' +
      '"id":"6f9619ff-8b86-d011-b42d-00c04fc964ff","list":[],"neg":-12,"none":null,"ok":true,"ratio":0.5,' +
      '"é":5,"\uFFFF":3,"\u{1F600}":4}}}}}'
    expect(hashOf(doc)).toBe(sha3(hashInput))
  })

  it("fails with the path of a value that cannot be stored", () => {
    const bad = withResourceSlot(base, "chess", "players", { n: "x\ud800y" })
    const result = versionHash(bad)
    expect(Either.isLeft(result) && result.left.path).toBe("sources.chess.resources.players.n")
  })
})

describe("PipelineState.bumpVersion", () => {
  it("sets the first hash without bumping, bumps on change, keeps an unchanged state", () => {
    const first = Either.getOrThrow(bumpVersion(base))
    expect(first._state_version).toBe(0)
    expect(first._version_hash).toBe(hashOf(base))

    const same = Either.getOrThrow(bumpVersion(first))
    expect(same).toBe(first)

    const changed = withResourceSlot(first, "chess", "players", { n: 1 })
    const bumped = Either.getOrThrow(bumpVersion(changed))
    expect(bumped._state_version).toBe(1)
    expect(bumped._version_hash).toBe(hashOf(changed))
    expect(bumped._version_hash).not.toBe(first._version_hash)

    const local = withLocal(bumped, { first_run: false })
    expect(Either.getOrThrow(bumpVersion(local))._state_version).toBe(1)

    const twice = Either.getOrThrow(bumpVersion(withResourceSlot(bumped, "chess", "players", { n: 2 })))
    expect(twice._state_version).toBe(2)
  })
})

describe("PipelineState file text", () => {
  const state: PipelineState = {
    ...withResourceSlot(base, "chess", "players_games", {
      archives: ["a"],
      amount: BigDecimal.unsafeFromString("10.00"),
      at: new Date("2024-05-01T12:00:00.250Z"),
      bytes: new Uint8Array([1, 2, 3])
    }),
    _version_hash: "abc=",
    default_schema_name: "chess",
    schema_names: ["chess"],
    destination_type: "dlt.destinations.sqlite",
    destination_name: "sqlite",
    staging_name: "unknown key dlt wrote",
    _local: {
      first_run: false,
      _last_extracted_at: new Date("2024-05-01T12:00:01Z"),
      _last_extracted_hash: "abc=",
      initial_cwd: "/home/me"
    }
  }

  it("round trips, keeping unknown keys, pretty with 2 spaces", () => {
    const text = Either.getOrThrow(toFileText(state))
    expect(text.startsWith('{\n  "_state_version": 0,')).toBe(true)
    expect(text).toContain('"_local": {\n    "first_run": false,')
    const back = Either.getOrThrow(fromFileText(text))
    expect(equals(back as unknown as StateValue, state as unknown as StateValue)).toBe(true)
    expect(back.staging_name).toBe("unknown key dlt wrote")
    expect(back._local._last_extracted_at).toEqual(new Date("2024-05-01T12:00:01Z"))
    expect(back._local.initial_cwd).toBe("/home/me")
    expect(hashOf(back)).toBe(hashOf(state))
  })

  it("reads a state.json as dlt writes it", () => {
    const text = JSON.stringify({
      _state_version: 2,
      _state_engine_version: 4,
      _version_hash: "Pm6yKXbaaSgYrmMgxZX1WCfGwLV/HCwYN7RwOTemEKA=",
      pipeline_name: "chess_pipeline",
      dataset_name: "chess_data",
      default_schema_name: null,
      destination_type: "dlt.destinations.duckdb",
      destination_name: "duckdb",
      sources: {
        chess: {
          resources: {
            players_games: {
              incremental: {
                end_time: {
                  initial_value: "\uF0272024-01-01T00:00:00+00:00",
                  last_value: "\uF0272024-02-01T10:00:00.123456+00:00",
                  unique_hashes: ["k5/8dBY2CuWR3gd2FpYu"]
                }
              }
            }
          }
        }
      },
      _local: {
        first_run: false,
        _last_extracted_at: "\uF0272024-02-01T10:05:00.000001+00:00",
        _last_extracted_hash: "Pm6yKXbaaSgYrmMgxZX1WCfGwLV/HCwYN7RwOTemEKA=",
        initial_cwd: "/work"
      }
    })
    const state = Either.getOrThrow(fromFileText(text))
    expect(state.default_schema_name).toBeNull()
    expect(state._local._last_extracted_at).toEqual(new Date("2024-02-01T10:05:00.000Z"))
    const cursor = getResourceSlot(state, "chess", "players_games").incremental as {
      readonly end_time: { readonly last_value: Timestamp }
    }
    expect(String(cursor.end_time.last_value)).toBe("2024-02-01T10:00:00.123456+00:00")
    expect(cursor.end_time.last_value).toBeInstanceOf(Timestamp)
  })

  it("defaults missing sources and first_run, reads a plain ISO _last_extracted_at", () => {
    const text = JSON.stringify({
      _state_version: 0,
      _state_engine_version: 4,
      pipeline_name: "p",
      dataset_name: "d",
      _local: {}
    })
    const state = Either.getOrThrow(fromFileText(text))
    expect(state.sources).toEqual({})
    expect(state._local.first_run).toBe(false)
    const plainDate = fromJson({ ...JSON.parse(text), _local: { _last_extracted_at: "2024-01-01T00:00:00Z" } })
    expect(Either.getOrThrow(plainDate)._local._last_extracted_at).toEqual(new Date("2024-01-01T00:00:00Z"))
  })

  it("rejects truncated text, garbage and wrong documents with InvalidStateDocument", () => {
    const text = Either.getOrThrow(toFileText(state))
    expect(expectInvalid(fromFileText(text.slice(0, text.length / 2))).message).toContain("not valid JSON")
    expect(expectInvalid(fromFileText("\u0000\u0001garbage")).message).toContain("not valid JSON")
    expect(expectInvalid(fromFileText("")).reason).toContain("not valid JSON")
    expect(expectInvalid(fromFileText("[1,2]")).reason).toContain("not a JSON object")
    const doc = JSON.parse(text) as Record<string, unknown>
    expect(expectInvalid(fromJson({ ...doc, pipeline_name: 5 })).reason).toContain("pipeline_name")
    expect(expectInvalid(fromJson({ ...doc, _state_version: -1 })).reason).toContain("_state_version")
    expect(expectInvalid(fromJson({ ...doc, _local: { first_run: "yes" } })).reason).toContain("first_run")
    expect(expectInvalid(fromJson({ ...doc, sources: { chess: [] } })).reason).toContain("chess")
    expect(expectInvalid(fromJson({ ...doc, _state_engine_version: 5 })).reason).toContain("upgrade pipestate")
    const { dataset_name: _, ...noDataset } = doc
    expect(expectInvalid(fromJson(noDataset)).reason).toContain("dataset_name")
  })

  it("upgrades documents of older engines as dlt does", () => {
    const v1 = {
      _state_version: 5,
      _state_engine_version: 1,
      pipeline_name: "p",
      dataset_name: "d",
      destination: "dlt.destinations.postgres",
      staging: "dlt.destinations.filesystem",
      sources: { s: { n: 1 } }
    }
    const state = Either.getOrThrow(fromJson(v1))
    expect(state._state_engine_version).toBe(4)
    expect(state._state_version).toBe(5)
    expect(state.destination_type).toBe("dlt.destinations.postgres")
    // dlt 3→4 sets a *_name equal to the type's last part to null
    expect(state.destination_name).toBeNull()
    expect(state.staging_type).toBe("dlt.destinations.filesystem")
    expect(state.staging_name).toBeNull()
    expect(state.destination).toBeUndefined()
    expect(state._local.first_run).toBe(false)
    // the engine 2 -> 3 step hashes the document as it was then, with `destination`
    expect(state._version_hash).toBe(
      sha3(
        '{"dataset_name":"d","destination":"dlt.destinations.postgres","pipeline_name":"p",' +
          '"sources":{"s":{"n":1}},"staging":"dlt.destinations.filesystem"}'
      )
    )
  })

  it("the Schema encodes back to typed JSON", () => {
    const json = Schema.encodeSync(PipelineStateFromJson)(state)
    expect(json.staging_name).toBe("unknown key dlt wrote")
    expect((json._local as { readonly _last_extracted_at: string })._last_extracted_at).toBe(
      "\uF0272024-05-01T12:00:01+00:00"
    )
    expect(
      equals(
        Schema.decodeUnknownSync(PipelineStateFromJson)(json) as unknown as StateValue,
        state as unknown as StateValue
      )
    ).toBe(true)
  })
})

describe("PipelineState slots", () => {
  it("reads missing slots as empty", () => {
    expect(getSourceSlot(base, "chess")).toEqual({})
    expect(getResourceSlot(base, "chess", "players")).toEqual({})
    expect(getResourceSlot(withSourceSlot(base, "chess", { resources: 5 }), "chess", "players")).toEqual({})
  })

  it("replaces slots immutably", () => {
    const one = withResourceSlot(base, "chess", "players", { n: 1 })
    const two = withResourceSlot(one, "chess", "games", { m: 2 })
    const three = withSourceSlot(two, "chess", { ...getSourceSlot(two, "chess"), shared: true })
    expect(base.sources).toEqual({})
    expect(one.sources).toEqual({ chess: { resources: { players: { n: 1 } } } })
    expect(getResourceSlot(three, "chess", "players")).toEqual({ n: 1 })
    expect(getResourceSlot(three, "chess", "games")).toEqual({ m: 2 })
    expect(getSourceSlot(three, "chess").shared).toBe(true)
    const four = withoutResourceSlot(three, "chess", "players")
    expect(getResourceSlot(four, "chess", "players")).toEqual({})
    expect(getResourceSlot(three, "chess", "players")).toEqual({ n: 1 })
    expect(withoutResourceSlot(four, "chess", "players")).toBe(four)
  })

  it("treats __proto__ as an ordinary name", () => {
    const state = withResourceSlot(base, "__proto__", "__proto__", { n: 1 })
    expect(getResourceSlot(state, "__proto__", "__proto__")).toEqual({ n: 1 })
    expect(Object.getPrototypeOf(state.sources)).toBe(Object.prototype)
  })
})
