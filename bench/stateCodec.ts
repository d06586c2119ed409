/**
 * state codec: a state holding a list of 100,000 URLs and an object of 100,000 keys with dates.
 * encode = version hash + blob (typed JSON, zlib 9, base64), decode = blob back to a validated
 * state; against JSON.stringify + zlib 9 + SHA3-256, and inflate + JSON.parse.
 */
import { createHash } from "node:crypto"
import { deflateSync, inflateSync } from "node:zlib"
import { Either } from "effect"
import * as PipelineState from "../src/internal/state/PipelineState.js"
import * as StateBlob from "../src/internal/state/StateBlob.js"
import * as StateValue from "../src/state/StateValue.js"
import type { Benchmark, Figure } from "./lib/env.js"
import { alternate, median, timed, timedSettled } from "./lib/stats.js"

const BASE = Date.UTC(2023, 0, 1)

export const makeState = (n: number): PipelineState.PipelineState => {
  const urls: Array<string> = new Array(n)
  const seen: Record<string, Date> = {}
  for (let i = 0; i < n; i++) {
    urls[i] =
      `https://api.chess.com/pub/player/player${i}/games/${2010 + (i % 15)}/${String((i % 12) + 1).padStart(2, "0")}`
    seen[`player_${i}`] = new Date(BASE + i * 61_000)
  }
  return {
    ...PipelineState.empty({ pipelineName: "bench_state", datasetName: "bench_state_data" }),
    sources: { chess: { archives: urls, resources: { players_games: { last_seen: seen } } } }
  }
}

interface Run {
  readonly encode: number
  readonly decode: number
  /** the decode again, without the young-generation collection of its result */
  readonly decodeUncharged: number
}

export const stateCodec: Benchmark = {
  id: "state-codec",
  figures: ["state codec encode", "state codec decode"],
  run: async (options) => {
    const n = Math.round(100_000 * options.scale)
    const reps = Math.max(5, options.reps * 2 + 1)
    const state = makeState(n)
    const { _local: _, ...synced } = state

    // correctness first (untimed): both round trips give the state back
    const blob = Either.getOrThrow(StateBlob.encode(state))
    const back = Either.getOrThrow(StateBlob.decode(blob))
    const slot = back.sources.chess as {
      archives: ReadonlyArray<string>
      resources: { players_games: { last_seen: Record<string, StateValue.Timestamp> } }
    }
    const seen = slot.resources.players_games.last_seen
    if (slot.archives.length !== n || Object.keys(seen).length !== n || !(seen.player_7 instanceof StateValue.Timestamp)) {
      throw new Error("state codec: the decoded state differs from the encoded one")
    }
    if (seen.player_7.toDate().getTime() !== BASE + 7 * 61_000) {
      throw new Error("state codec: a date changed in the round trip")
    }

    const deflatedJson = deflateSync(Buffer.from(JSON.stringify(synced), "utf8"), { level: 9 })
    const doEncode = options.wants("state codec encode")
    const doDecode = options.wants("state codec decode")
    // each side decodes the output of its own encoder (made once, untimed)
    const pipestate = async (): Promise<Run> => {
      const encode = doEncode
        ? await timed(() => {
            // a new state object, as each commit has (the hash's encoding is reused for the blob
            // of the same object only)
            const fresh = { ...state }
            Either.getOrThrow(PipelineState.versionHash(fresh))
            return Either.getOrThrow(StateBlob.encode(fresh))
          })
        : { ms: Number.NaN }
      const decodeOnce = () => Either.getOrThrow(StateBlob.decode(blob))
      const decode = doDecode ? await timedSettled(decodeOnce) : { ms: Number.NaN }
      const decodeUncharged = doDecode ? await timed(decodeOnce) : { ms: Number.NaN }
      return { encode: encode.ms, decode: decode.ms, decodeUncharged: decodeUncharged.ms }
    }
    const baseline = async (): Promise<Run> => {
      const encode = doEncode
        ? await timed(() => {
            const text = JSON.stringify(synced)
            createHash("sha3-256").update(text, "utf8").digest("base64")
            return deflateSync(Buffer.from(text, "utf8"), { level: 9 })
          })
        : { ms: Number.NaN }
      const decodeOnce = () => JSON.parse(inflateSync(deflatedJson).toString("utf8"))
      const decode = doDecode ? await timedSettled(decodeOnce) : { ms: Number.NaN }
      const decodeUncharged = doDecode ? await timed(decodeOnce) : { ms: Number.NaN }
      return { encode: encode.ms, decode: decode.ms, decodeUncharged: decodeUncharged.ms }
    }

    options.log(
      `state codec: ${n.toLocaleString("en-US")} URLs + ${n.toLocaleString("en-US")} dated keys, ${reps} repetitions`
    )
    const { pipestate: p, baseline: b } = await alternate(
      { ...options, reps },
      baseline,
      pipestate,
      (run) =>
        `encode ${run.encode.toFixed(1)} ms, decode ${run.decode.toFixed(1)} ms (${run.decodeUncharged.toFixed(1)} ms uncharged)`
    )
    const figure = (part: keyof Run, name: string, note: string, targeted = true): Figure => {
      const value = median(p.map((r) => r[part]))
      const base = median(b.map((r) => r[part]))
      return {
        name,
        value,
        unit: "ms",
        baseline: base,
        ratio: base / value,
        ...(targeted ? { target: { kind: "ratio>=", value: 0.6 } } : {}),
        note
      }
    }
    return [
      figure(
        "encode",
        "state codec encode",
        "baseline: JSON.stringify + SHA3-256 + zlib level 9 (pipestate: versionHash + StateBlob.encode)"
      ),
      figure(
        "decode",
        "state codec decode",
        "baseline: inflate + JSON.parse (pipestate: StateBlob.decode, typed values and Schema validation); each side's time includes the young-generation collection of its result: JSON.parse leaves the parsed tree in the nursery for the next allocation to copy, StateBlob.decode pays that copy inside its walk"
      ),
      figure(
        "decodeUncharged",
        "state codec decode uncharged",
        "the same decode timings without the collection: the baseline's copy of its tree then falls after the timing",
        false
      )
    ].filter((f) => options.wants(f.name) || (doDecode && f.name.startsWith("state codec decode")))
  }
}
