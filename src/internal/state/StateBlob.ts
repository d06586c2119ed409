/**
 * The state as the destination stores it in `_dlt_pipeline_state.state`: dlt's format,
 * base64(zlib level 9 (typed JSON of the document without `_local`)), so that dlt and pipestate
 * read each other's datasets.
 *
 * @since 0.1.0
 */
import { deflateSync, inflateSync } from "node:zlib"
import { Either, Schema } from "effect"
import {
  bumpVersionWithText,
  fromText as documentFromText,
  fromUtf8BytesFast,
  type PipelineState,
  storedText
} from "./PipelineState.js"
import type { NonSerializableStateValue } from "../../state/StateValue.js"

/**
 * A stored state that cannot be read.
 *
 * @since 0.1.0
 */
export class InvalidStateBlob extends Schema.TaggedError<InvalidStateBlob>()("InvalidStateBlob", {
  reason: Schema.String,
  pipelineName: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const whose = this.pipelineName === undefined ? "a pipeline" : `pipeline "${this.pipelineName}"`
    return (
      `The state of ${whose} stored in the destination (_dlt_pipeline_state.state) cannot be read: ${this.reason}. ` +
      "It was damaged or not written by pipestate or dlt: remove that row, or run without restoring from the destination."
    )
  }
}

// a stored state beyond this size is not a state: refuse it rather than exhaust memory
const MAX_INFLATED_BYTES = 1024 * 1024 * 1024

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

// The bytes of strict standard base64, else undefined. Canonical base64 (what every encoder
// writes) is recognized by writing the bytes back, several times faster than the regex.
const strictBase64 = (text: string): Buffer | undefined => {
  const bytes = Buffer.from(text, "base64")
  return bytes.toString("base64") === text || STRICT_BASE64.test(text) ? bytes : undefined
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

// a stored state comes from a run that loaded
const NOT_FIRST_RUN = { _local: { first_run: false } }

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * The blob of a state: the stored document (`PipelineState.storedText`: `_local` removed, the
 * version fields first, the other keys in document order), zlib level 9 (as
 * Python's `zlib.compress(data, level=9)`), standard base64. Made from the same encoding as the
 * state's version hash when that was just computed.
 *
 * @example
 * ```ts
 * const blob = yield* StateBlob.encode(state)
 * ```
 *
 * @since 0.1.0
 */
export const encode = (state: PipelineState): Either.Either<string, NonSerializableStateValue> => {
  return Either.map(storedText(state), encodeText)
}

/**
 * The blob of typed JSON text that is already written: zlib level 9, standard base64. The text is
 * that of a document without `_local`, such as `PipelineState.bumpVersionWithText` gives.
 *
 * @example
 * ```ts
 * const { state: next, text } = yield* PipelineState.bumpVersionWithText(changed)
 * const blob = StateBlob.encodeText(text)
 * ```
 *
 * @since 0.1.0
 */
export const encodeText = (text: string): string =>
  deflateSync(Buffer.from(text, "utf8"), { level: 9 }).toString("base64")

/**
 * What a commit needs, from one encoding of the state: the state with its version bumped
 * (`PipelineState.bumpVersion`), its new version hash, and the blob of that state, from one walk
 * over the state.
 *
 * @example
 * ```ts
 * const { state: next, hash, blob } = yield* StateBlob.encodeForCommit(changed)
 * ```
 *
 * @since 0.1.0
 */
export const encodeForCommit = (
  state: PipelineState
): Either.Either<
  { readonly state: PipelineState; readonly hash: string; readonly blob: string },
  NonSerializableStateValue
> =>
  Either.map(bumpVersionWithText(state), (bumped) => ({
    state: bumped.state,
    hash: bumped.hash,
    blob: encodeText(bumped.text)
  }))

/**
 * The state of a blob. A blob that is not strict standard base64 is read as plain typed JSON (the
 * legacy, uncompressed form). The result has `_local: { first_run: false }`: a stored state
 * comes from a run that loaded. `context.pipelineName` only improves error messages.
 *
 * @example
 * ```ts
 * StateBlob.decode(row.state, { pipelineName: "chess_pipeline" }) // Either<PipelineState, InvalidStateBlob>
 * ```
 *
 * @since 0.1.0
 */
export const decode = (
  blob: string,
  context?: { readonly pipelineName?: string }
): Either.Either<PipelineState, InvalidStateBlob> => {
  const fail = (reason: string) =>
    new InvalidStateBlob(
      context?.pipelineName === undefined ? { reason } : { reason, pipelineName: context.pipelineName }
    )
  const bytes = blob.length > 0 ? strictBase64(blob) : undefined
  if (bytes === undefined) return fromText(blob, fail)
  const badBytes = (error: unknown) => fail(`it is base64 but not zlib-compressed UTF-8 text (${describe(error)})`)
  return Either.try({
    try: () => inflateSync(bytes, { maxOutputLength: MAX_INFLATED_BYTES }),
    catch: badBytes
  }).pipe(
    Either.flatMap((inflated) => {
      // what pipestate and dlt write is read without decoding UTF-8; anything else, the exact way
      const fast = fromUtf8BytesFast(inflated, NOT_FIRST_RUN)
      if (fast !== undefined) return Either.right(fast)
      return Either.flatMap(Either.try({ try: () => utf8.decode(inflated), catch: badBytes }), (text) =>
        fromText(text, fail)
      )
    })
  )
}

// the state of typed JSON text (the UTF-8 path, and the legacy uncompressed blobs)
const fromText = (
  text: string,
  fail: (reason: string) => InvalidStateBlob
): Either.Either<PipelineState, InvalidStateBlob> =>
  Either.mapLeft(documentFromText(text, NOT_FIRST_RUN), (error) =>
    fail(
      error.reason.startsWith("not valid JSON")
        ? `it is neither base64 nor JSON (${error.reason})`
        : error.reason === "the document is not a JSON object"
          ? "it does not hold a JSON object"
          : error.reason
    )
  )
