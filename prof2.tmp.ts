import { Either } from "effect"
import { makeState } from "./bench/stateCodec.js"
import * as PipelineState from "./src/state/PipelineState.js"
import * as StateBlob from "./src/state/StateBlob.js"
const state = makeState(100_000)
const blob = Either.getOrThrow(StateBlob.encode(state))
for (let i = 0; i < 4; i++) { PipelineState.versionHash(state); StateBlob.encode(state); StateBlob.decode(blob) }
