import { Either } from "effect"
import { makeState } from "./bench/stateCodec.js"
import * as PipelineState from "./src/state/PipelineState.js"
import * as StateBlob from "./src/state/StateBlob.js"
import * as SV from "./src/state/StateValue.js"
const state = makeState(100_000)
const { _local: _, ...synced } = state
const time = (name: string, f: () => unknown) => { let best = 1e9; for (let i = 0; i < 5; i++) { const t = performance.now(); f(); best = Math.min(best, performance.now() - t) } console.log(name, best.toFixed(1)) }
time("JSON.stringify", () => JSON.stringify(synced))
time("stringifySorted", () => SV.stringifySorted(synced))
time("stringify compact", () => SV.stringify(synced))
time("validate", () => SV.validate(synced))
time("versionHash", () => PipelineState.versionHash(state))
time("blob encode", () => StateBlob.encode(state))
const blob = Either.getOrThrow(StateBlob.encode(state))
time("blob decode", () => StateBlob.decode(blob))
const dates = Object.values((synced.sources as any).chess.resources.players_games.last_seen) as Date[]
time("dates only", () => { for (const d of dates) SV.stringify(d) })
const strs = (synced.sources as any).chess.archives as string[]
time("isWellFormed", () => { let n = 0; for (const s of strs) if ((s as any).isWellFormed()) n++ })
import { deflateSync, inflateSync } from "node:zlib"
const text = JSON.stringify(synced)
const defl = deflateSync(Buffer.from(text), { level: 9 })
time("baseline deflate", () => deflateSync(Buffer.from(text), { level: 9 }))
time("baseline inflate+parse", () => JSON.parse(inflateSync(defl).toString("utf8")))
