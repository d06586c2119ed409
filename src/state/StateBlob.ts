/**
 * The state as the destination stores it in `_dlt_pipeline_state.state`: dlt's format,
 * base64(zlib level 9 (typed JSON of the document without `_local`)), so that dlt and pipestate
 * read each other's datasets.
 *
 * @since 0.1.0
 */
import { deflateSync, inflateSync } from "node:zlib"
import { Either, Schema } from "effect"
import { fromJson, type PipelineState } from "./PipelineState.js"
import { type NonSerializableStateValue, stringify } from "./StateValue.js"

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

const utf8 = new TextDecoder("utf-8", { fatal: true })

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * The blob of a state: `_local` removed, typed JSON (compact, keys in document order), zlib level
 * 9 (as Python's `zlib.compress(data, level=9)`), standard base64.
 *
 * @example
 * ```ts
 * const blob = yield* StateBlob.encode(state)
 * ```
 *
 * @since 0.1.0
 */
export const encode = (state: PipelineState): Either.Either<string, NonSerializableStateValue> => {
  const { _local: _, ...synced } = state
  return Either.map(stringify(synced), (text) =>
    deflateSync(Buffer.from(text, "utf8"), { level: 9 }).toString("base64")
  )
}

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
  const text: Either.Either<string, InvalidStateBlob> =
    blob.length > 0 && STRICT_BASE64.test(blob)
      ? Either.try({
          try: () => utf8.decode(inflateSync(Buffer.from(blob, "base64"), { maxOutputLength: MAX_INFLATED_BYTES })),
          catch: (error) => fail(`it is base64 but not zlib-compressed UTF-8 text (${describe(error)})`)
        })
      : Either.right(blob)
  return text.pipe(
    Either.flatMap((json) =>
      Either.try({
        try: (): unknown => JSON.parse(json),
        catch: (error) => fail(`it is neither base64 nor JSON (${describe(error)})`)
      })
    ),
    Either.flatMap((doc) =>
      typeof doc === "object" && doc !== null && !Array.isArray(doc)
        ? Either.right(doc)
        : Either.left(fail("it does not hold a JSON object"))
    ),
    Either.flatMap((doc) =>
      Either.mapLeft(fromJson({ ...doc, _local: { first_run: false } }), (error) => fail(error.reason))
    )
  )
}
