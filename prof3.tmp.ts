import { inflateSync, deflateSync } from "node:zlib"
import { Either } from "effect"
import { makeState } from "./bench/stateCodec.js"
import * as StateBlob from "./src/state/StateBlob.js"
import * as SV from "./src/state/StateValue.js"
const state = makeState(100_000)
const blob = Either.getOrThrow(StateBlob.encode(state))
const bytes = Buffer.from(blob, "base64")
const time = (name: string, f: () => unknown) => { let best = 1e9; for (let i = 0; i < 7; i++) { const t = performance.now(); f(); best = Math.min(best, performance.now() - t) } console.log(name.padEnd(30), best.toFixed(1)) }
const infl = inflateSync(bytes)
const text = infl.toString("latin1")
time("inflate", () => inflateSync(bytes))
time("latin1", () => infl.toString("latin1"))
time("utf8", () => infl.toString("utf8"))
time("byteLength", () => Buffer.byteLength(text, "utf8"))
time("JSON.parse latin1", () => JSON.parse(text))
time("parse+inplace", () => SV.decodeParsedInPlace((JSON.parse(text) as any).sources, true))
time("blob decode", () => StateBlob.decode(blob))
time("baseline", () => JSON.parse(inflateSync(deflateSync(Buffer.from(JSON.stringify(state)), {level: 1})).toString("utf8")))
