/**
 * The pipeline state document, shaped as dlt's (engine version 4): a version counter, a content
 * hash, the pipeline/dataset/destination names, the `sources` slots and the `_local` section that
 * never leaves this machine.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Either, ParseResult, Schema } from "effect"
import {
  decode,
  decodeParsedInPlace,
  type InPlaceResult,
  isExactParse,
  type Json,
  JsonSchema,
  type NonSerializableStateValue,
  parseJson,
  type StateValue,
  StateValueFromJson,
  stringify,
  stringifyBoth,
  stringifySorted,
  Timestamp
} from "../../state/StateValue.js"

/**
 * The state engine version this module reads and writes (dlt's `PIPELINE_STATE_ENGINE_VERSION`).
 *
 * @since 0.1.0
 */
export const ENGINE_VERSION = 4

/**
 * A slot: the state of one source (`sources.<source>`) or one resource
 * (`sources.<source>.resources.<resource>`).
 *
 * @since 0.1.0
 */
export type Slot = { readonly [key: string]: StateValue }

/**
 * The part of the state that stays on this machine: never hashed, never sent to the destination.
 * `_last_extracted_at` is a datetime in dlt, so it is a `Date` here. Other keys dlt writes
 * (`initial_cwd`, `last_run_context`, ...) are kept as they are.
 *
 * @since 0.1.0
 */
export interface LocalState {
  readonly first_run: boolean
  readonly _last_extracted_at?: Date
  readonly _last_extracted_hash?: string
  readonly [key: string]: StateValue | undefined
}

/**
 * The state document. Keys this module does not know (dlt writes e.g. `staging_name`) are kept
 * at the top level as state values, hashed and synced like the rest.
 *
 * @since 0.1.0
 */
export interface PipelineState {
  readonly _state_version: number
  readonly _state_engine_version: number
  readonly _version_hash?: string
  readonly pipeline_name: string
  /** `null` in a dlt state of a pipeline made without a dataset */
  readonly dataset_name: string | null
  readonly default_schema_name?: string | null
  readonly schema_names?: ReadonlyArray<string> | null
  readonly destination_type?: string | null
  readonly destination_name?: string | null
  readonly sources: { readonly [source: string]: Slot }
  readonly _local: LocalState
  readonly [key: string]: StateValue | LocalState | undefined
}

/**
 * A state document that cannot be read: not JSON, a missing or mistyped field, or an engine
 * version we cannot upgrade from.
 *
 * @since 0.1.0
 */
export class InvalidStateDocument extends Schema.TaggedError<InvalidStateDocument>()("InvalidStateDocument", {
  reason: Schema.String
}) {
  override get message(): string {
    return `The pipeline state document is invalid: ${this.reason}`
  }
}

/**
 * The `sources` of a state whose document has no `sources` key (a fresh pipeline, or a dlt state
 * that never held any): empty, and left out of the hash and the stored text, as dlt leaves it out.
 * A state that gets a slot gets a `sources` object of its own.
 *
 * @since 0.1.0
 */
export const NO_SOURCES: PipelineState["sources"] = Object.freeze({})

/**
 * A fresh state: version 0, no hash, first run, no sources (as dlt's, with no `sources` key).
 *
 * @example
 * ```ts
 * const state = PipelineState.empty({ pipelineName: "chess_pipeline", datasetName: "chess_data" })
 * ```
 *
 * @since 0.1.0
 */
export const empty = (options: { readonly pipelineName: string; readonly datasetName: string }): PipelineState => ({
  _state_version: 0,
  _state_engine_version: ENGINE_VERSION,
  pipeline_name: options.pipelineName,
  dataset_name: options.datasetName,
  sources: NO_SOURCES,
  _local: { first_run: true }
})

// ---------------------------------------------------------------------------------------------
// Version hash
// ---------------------------------------------------------------------------------------------

const UNHASHED = new Set(["_state_version", "_state_engine_version", "_version_hash", "_local"])

const withoutKeys = <A>(
  record: { readonly [key: string]: A },
  keys: ReadonlySet<string>
): { readonly [key: string]: A } => {
  const out: Record<string, A> = {}
  for (const key of Object.keys(record)) {
    if (keys.has(key)) continue
    if (key === "__proto__") {
      Object.defineProperty(out, key, { value: record[key], enumerable: true, writable: true, configurable: true })
    } else {
      out[key] = record[key]!
    }
  }
  return out
}

const UNHASHED_NO_SOURCES = new Set([...UNHASHED, "sources"])

// the keys of a state that its text leaves out: `sources` when the document had none
const unhashed = (state: { readonly sources?: unknown }): ReadonlySet<string> =>
  state.sources === NO_SOURCES ? UNHASHED_NO_SOURCES : UNHASHED

/**
 * The document as dlt stores it: without `_local`, and without `sources` when it has none
 * ({@link NO_SOURCES}). What `StateBlob.encode` writes.
 *
 * @since 0.1.0
 */
export const syncedDocument = (state: PipelineState): { readonly [key: string]: unknown } =>
  withoutKeys(state, state.sources === NO_SOURCES ? new Set(["_local", "sources"]) : new Set(["_local"]))

const sha3Base64 = (text: string): string => createHash("sha3-256").update(text, "utf8").digest("base64")

// The hash of a typed JSON document as dlt computes it when migrating from engine 2: over the
// decoded state, so "...Z" datetimes are hashed as "+00:00".
const hashJson = (doc: { readonly [key: string]: Json }): Either.Either<string, NonSerializableStateValue> =>
  Either.map(stringifySorted(decode(withoutKeys(doc, UNHASHED))), sha3Base64)

/**
 * dlt's version hash: SHA3-256 of the compact typed JSON, keys sorted at every level, of the
 * document without `_state_version`, `_state_engine_version`, `_version_hash` and `_local`;
 * padded standard base64.
 *
 * @example
 * ```ts
 * PipelineState.versionHash(state) // Right("3cJ2...=")
 * ```
 *
 * @since 0.1.0
 */
export const versionHash = (state: PipelineState): Either.Either<string, NonSerializableStateValue> =>
  Either.map(hashedText(state), sha3Base64)

// The texts of the states hashed lately: a commit hashes a state (`bumpVersion`) and then stores
// it (`StateBlob.encode`); one walk writes both texts. States are immutable; the entry goes with
// its state.
interface Texts {
  /** compact, keys sorted: what the version hash is computed over */
  readonly hashed: string
  /** compact, keys in document order: the stored document without its version fields */
  readonly body: string
}
const textsCache = new WeakMap<PipelineState, Texts>()

const textsOf = (state: PipelineState): Either.Either<Texts, NonSerializableStateValue> => {
  const cached = textsCache.get(state)
  if (cached !== undefined) return Either.right(cached)
  const texts = Either.map(stringifyBoth(withoutKeys(state, unhashed(state))), ({ doc, sorted }) => ({
    hashed: sorted,
    body: doc
  }))
  if (Either.isRight(texts)) textsCache.set(state, texts.right)
  return texts
}

// what the version hash is computed over: compact typed JSON, keys sorted at every level
const hashedText = (state: PipelineState): Either.Either<string, NonSerializableStateValue> =>
  Either.map(textsOf(state), (texts) => texts.hashed)

// a document text without its version fields, with them in front
const withHead = (state: PipelineState, body: string): Either.Either<string, NonSerializableStateValue> => {
  const head = {
    _state_version: state._state_version,
    _state_engine_version: state._state_engine_version,
    _version_hash: state._version_hash
  }
  return Either.map(stringify(head), (headText) =>
    body === "{}" ? headText : `${headText.slice(0, -1)},${body.slice(1)}`
  )
}

/**
 * The compact typed JSON that the destination stores for a state (`StateBlob.encode` compresses
 * it): the document without `_local`, `_state_version`, `_state_engine_version` and
 * `_version_hash` first, then the other keys in document order (as dlt writes them). It comes
 * from the same walk over the state as the version hash: after {@link bumpVersion} or
 * {@link versionHash} of the same state object, only the three fields are written.
 *
 * @since 0.1.0
 */
export const storedText = (state: PipelineState): Either.Either<string, NonSerializableStateValue> =>
  Either.flatMap(textsOf(state), (texts) => withHead(state, texts.body))

const withHash = (state: PipelineState, hash: string): PipelineState => {
  const previous = state._version_hash
  if (previous === undefined || previous === "") return { ...state, _version_hash: hash }
  if (previous === hash) return state
  return { ...state, _state_version: state._state_version + 1, _version_hash: hash }
}

/**
 * dlt's version rule: the first hash is set without bumping the version; a later different hash
 * bumps `_state_version` by one; an equal hash leaves the state as it is (the same object).
 *
 * @example
 * ```ts
 * const next = PipelineState.bumpVersion(withResourceSlot(state, "chess", "players", { n: 1 }))
 * ```
 *
 * @since 0.1.0
 */
export const bumpVersion = (state: PipelineState): Either.Either<PipelineState, NonSerializableStateValue> =>
  Either.map(textsOf(state), (texts) => {
    const next = withHash(state, sha3Base64(texts.hashed))
    // the version fields are in neither text: the next state has the same texts
    textsCache.set(next, texts)
    return next
  })

/**
 * {@link bumpVersion}, and the compact typed JSON `text` of the new state without `_local` (what
 * `StateBlob.encodeText` compresses into the stored blob, see {@link storedText}), from one walk
 * over the state. `hash` is the new `_version_hash`.
 *
 * @example
 * ```ts
 * const { state: next, hash, text } = yield* PipelineState.bumpVersionWithText(changed)
 * const blob = StateBlob.encodeText(text) // only when committing
 * ```
 *
 * @since 0.1.0
 */
export const bumpVersionWithText = (
  state: PipelineState
): Either.Either<
  { readonly state: PipelineState; readonly hash: string; readonly text: string },
  NonSerializableStateValue
> =>
  Either.flatMap(textsOf(state), (texts) => {
    const hash = sha3Base64(texts.hashed)
    const next = withHash(state, hash)
    textsCache.set(next, texts)
    return Either.map(withHead(next, texts.body), (text) => ({ state: next, hash, text }))
  })

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

const SlotFromJson = Schema.Record({ key: Schema.String, value: StateValueFromJson })

// a typed-JSON datetime as dlt writes it, as a Date (`_local` is neither hashed nor synced); plain
// ISO text is read too (early pipestate files)
const TimestampAsDate = Schema.transform(
  Schema.declare((u: unknown): u is Timestamp | Date => u instanceof Timestamp || u instanceof Date),
  Schema.DateFromSelf,
  { strict: true, decode: (v) => (v instanceof Timestamp ? v.toDate() : v), encode: (d) => d }
)
const DateFromTypedJson = Schema.Union(
  Schema.compose(StateValueFromJson, TimestampAsDate, { strict: false }),
  Schema.DateFromString
)

const LocalKnown = Schema.Struct({
  first_run: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  _last_extracted_at: Schema.optional(DateFromTypedJson),
  _last_extracted_hash: Schema.optional(Schema.String)
})

const DocumentKnown = Schema.Struct({
  _state_version: Schema.NonNegativeInt,
  _state_engine_version: Schema.Literal(ENGINE_VERSION),
  _version_hash: Schema.optional(Schema.String),
  pipeline_name: Schema.String,
  dataset_name: Schema.NullOr(Schema.String),
  default_schema_name: Schema.optional(Schema.NullOr(Schema.String)),
  schema_names: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  destination_type: Schema.optional(Schema.NullOr(Schema.String)),
  destination_name: Schema.optional(Schema.NullOr(Schema.String)),
  // dlt creates `sources` on first use, so a state that never held any has none
  sources: Schema.optionalWith(Schema.Record({ key: Schema.String, value: SlotFromJson }), { default: () => ({}) }),
  _local: Schema.suspend(() => LocalFromJson)
})

type JsonRecord = { readonly [key: string]: Json }

const JsonRecordSchema = Schema.Record({ key: Schema.String, value: JsonSchema })

const isRecord = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

// Split an object into the keys a Struct knows and the rest, decode each part with its schema and
// merge the results: Schema.Struct's index signatures would also apply to the known keys.
const splitCodec = <A extends { readonly [key: string]: unknown }, K extends object, KI extends object>(
  known: Schema.Schema<K, KI>,
  knownKeys: ReadonlySet<string>,
  identifier: string,
  is: (u: { readonly [key: string]: unknown }) => boolean
): Schema.Schema<A, JsonRecord> => {
  const decodeKnown = ParseResult.decodeUnknown(known)
  const encodeKnown = ParseResult.encodeUnknown(known)
  const decodeExtra = ParseResult.decodeUnknown(SlotFromJson)
  const encodeExtra = ParseResult.encodeUnknown(SlotFromJson)
  const split = (input: { readonly [key: string]: unknown }) => {
    const knownPart: Record<string, unknown> = {}
    const extraPart: Record<string, unknown> = {}
    for (const key of Object.keys(input)) {
      const target = knownKeys.has(key) ? knownPart : extraPart
      Object.defineProperty(target, key, { value: input[key], enumerable: true, writable: true, configurable: true })
    }
    return [knownPart, extraPart] as const
  }
  // the merge is what A describes: the known fields over the extra state values
  const merge = <T>(extra: object, knownPart: object): T => ({ ...extra, ...knownPart }) as T
  return Schema.transformOrFail(
    JsonRecordSchema,
    Schema.declare((u): u is A => isRecord(u) && is(u), { identifier }),
    {
      strict: true,
      decode: (input, options) => {
        const [knownPart, extraPart] = split(input)
        return ParseResult.flatMap(decodeKnown(knownPart, options), (k) =>
          ParseResult.map(decodeExtra(extraPart, options), (rest) => merge<A>(rest, k))
        )
      },
      encode: (value, options) => {
        const [knownPart, extraPart] = split(value)
        return ParseResult.flatMap(encodeKnown(knownPart, options), (k) =>
          ParseResult.map(encodeExtra(extraPart, options), (rest) => merge<JsonRecord>(rest, k))
        )
      }
    }
  )
}

const LocalFromJson: Schema.Schema<LocalState, JsonRecord> = splitCodec(
  LocalKnown,
  new Set(Object.keys(LocalKnown.fields)),
  "LocalState",
  (u) => typeof u.first_run === "boolean"
)

/**
 * The state document as a Schema, from its typed JSON (the `state.json` file without the text
 * layer). Unknown keys are kept as state values.
 *
 * @since 0.1.0
 */
export const PipelineStateFromJson: Schema.Schema<PipelineState, JsonRecord> = splitCodec(
  DocumentKnown,
  new Set(Object.keys(DocumentKnown.fields)),
  "PipelineState",
  (u) => typeof u.pipeline_name === "string" && isRecord(u._local) && isRecord(u.sources)
)

// ---------------------------------------------------------------------------------------------
// Old engine versions
// ---------------------------------------------------------------------------------------------

// "dlt.destinations.postgres" -> "postgres", as dlt's Destination.to_name
const destinationName = (ref: string): string => ref.slice(ref.lastIndexOf(".") + 1)

/**
 * Upgrades a typed-JSON document written by an older dlt engine (1..3) to engine 4, step by step
 * as dlt's `migrate_pipeline_state` does: 1→2 sets `_local` to `{}`; 2→3 sets `_version_hash` to
 * the hash of the decoded state; 3→4 moves a non-empty `destination`/`staging` to `*_type` (with
 * `*_name`), then sets a `*_name` equal to the last dotted part of its `*_type` to `null`. The hash
 * is not recomputed at 3→4, so the next save bumps the version. An engine-4 document comes back
 * untouched; engine 0 and engines past 4 fail.
 *
 * @since 0.1.0
 */
export const migrateJson = (doc: JsonRecord): Either.Either<JsonRecord, InvalidStateDocument> => {
  let engine = doc._state_engine_version
  if (typeof engine !== "number" || !Number.isInteger(engine)) {
    return Either.left(new InvalidStateDocument({ reason: "_state_engine_version is missing or not an integer" }))
  }
  if (engine > ENGINE_VERSION) {
    return Either.left(
      new InvalidStateDocument({
        reason:
          `it was written with state engine version ${engine} and this pipestate reads up to ${ENGINE_VERSION}: ` +
          "upgrade pipestate"
      })
    )
  }
  if (engine < 1) {
    return Either.left(new InvalidStateDocument({ reason: `unknown state engine version ${engine}` }))
  }
  if (engine === ENGINE_VERSION) return Either.right(doc)
  const out: Record<string, Json> = { ...doc }
  if (engine === 1) {
    out._local = {}
    engine = 2
  }
  if (engine === 2) {
    const hash = hashJson(out)
    if (Either.isLeft(hash)) {
      return Either.left(
        new InvalidStateDocument({ reason: `its version hash cannot be computed: ${hash.left.message}` })
      )
    }
    out._version_hash = hash.right
    engine = 3
  }
  if (engine === 3) {
    for (const prefix of ["destination", "staging"] as const) {
      const ref = out[prefix]
      if (typeof ref === "string" && ref !== "") {
        out[`${prefix}_type`] = ref
        out[`${prefix}_name`] = destinationName(ref)
        delete out[prefix]
      }
    }
    engine = 4
    for (const prefix of ["destination", "staging"] as const) {
      const type = out[`${prefix}_type`]
      if (typeof type === "string" && type !== "" && destinationName(type) === out[`${prefix}_name`]) {
        out[`${prefix}_name`] = null
      }
    }
  }
  out._state_engine_version = engine
  return Either.right(out)
}

/**
 * Reads a parsed typed-JSON document (engine 1..4) into a state, validating it.
 *
 * @since 0.1.0
 */
export const fromJson = (json: unknown): Either.Either<PipelineState, InvalidStateDocument> => {
  if (!isRecord(json)) {
    return Either.left(new InvalidStateDocument({ reason: "the document is not a JSON object" }))
  }
  return Either.flatMap(migrateJson(json as JsonRecord), decodeDocument)
}

const decodeDocument = (doc: JsonRecord): Either.Either<PipelineState, InvalidStateDocument> =>
  Either.mapBoth(Schema.decodeUnknownEither(PipelineStateFromJson)(doc, { errors: "first" }), {
    onLeft: (error) => new InvalidStateDocument({ reason: ParseResult.TreeFormatter.formatErrorSync(error) }),
    // a document without `sources` keeps that absence (the Schema's default is a copy)
    onRight: (state) => (Object.hasOwn(doc, "sources") ? state : { ...state, sources: NO_SOURCES })
  })

// a source slot map the fast path takes: a plain object (what Schema.Record reads without surprises)
const isFastSlotMap = (value: Json | undefined): value is { readonly [key: string]: Json } =>
  isRecord(value) && !Object.hasOwn(value, "__proto__")

// The fast path of fromText: the Schema checks only the top-level fields, `decodeSources`
// decodes the sources in place. Undefined where it leaves the decision to the exact path (the
// document may then be partly decoded). Without `migrate`, a document of an older engine is left
// too.
const decodeOwned = (
  json: unknown,
  migrate: boolean,
  decodeSources: (sources: JsonRecord) => StateValue | undefined
): Either.Either<PipelineState, InvalidStateDocument> | undefined => {
  if (!isRecord(json)) return undefined
  let doc = json as JsonRecord
  if (migrate) {
    const migrated = migrateJson(doc)
    if (Either.isLeft(migrated)) return Either.left(migrated.left)
    doc = migrated.right
  } else if (doc._state_engine_version !== ENGINE_VERSION) {
    return undefined
  }
  if (!Object.hasOwn(doc, "sources")) return decodeDocument(doc)
  const sources = doc.sources
  // arrays, non-objects, a source name or slot key "__proto__": the Schema decides
  if (!isFastSlotMap(sources)) return undefined
  for (const source of Object.keys(sources)) {
    if (!isFastSlotMap(sources[source])) return undefined
  }
  const rest = decodeDocument({ ...doc, sources: {} })
  if (Either.isLeft(rest)) return undefined
  const decoded = decodeSources(sources)
  if (decoded === undefined) return undefined
  return Either.right({ ...rest.right, sources: decoded as PipelineState["sources"] })
}

const notJson = (error: unknown): InvalidStateDocument =>
  new InvalidStateDocument({ reason: `not valid JSON (${error instanceof Error ? error.message : String(error)})` })

// the exact (slow) path: dlt's reading of the text, then the Schema
const fromExactText = (
  text: string,
  override: JsonRecord | undefined
): Either.Either<PipelineState, InvalidStateDocument> =>
  Either.flatMap(Either.mapLeft(parseJson(text), notJson), (json) =>
    fromJson(override === undefined || !isRecord(json) ? json : { ...(json as JsonRecord), ...override })
  )

/**
 * Reads the typed JSON text of a state document (engine 1..4, ours or dlt's), validating it and
 * losing nothing: integers past 2^53, floats written `1.0`, key order. `override` keys replace the
 * document's top-level keys. `JSON.parse` and an in-place decoding of the sources do the work when
 * the text allows (see `StateValue.isExactParse`); the exact parser the rest.
 *
 * @example
 * ```ts
 * PipelineState.fromText(text) // Either<PipelineState, InvalidStateDocument>
 * ```
 *
 * @since 0.1.0
 */
export const fromText = (text: string, override?: JsonRecord): Either.Either<PipelineState, InvalidStateDocument> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return Either.left(notJson(error))
  }
  if (isRecord(parsed)) {
    const doc = override === undefined ? parsed : { ...parsed, ...override }
    let found: InPlaceResult | undefined
    const owned = decodeOwned(doc, true, (sources) => {
      found = decodeParsedInPlace(sources)
      return found?.value
    })
    if (owned !== undefined && (found === undefined || isExactParse(text, found))) return owned
  }
  return fromExactText(text, override)
}

/**
 * A state document from its UTF-8 bytes, the fast way, when the bytes allow it: ASCII text without
 * backslashes (escapes) whose only other bytes are typed-JSON marks starting strings in `sources`
 * (what pipestate and dlt write) is read as Latin-1, skipping the UTF-8 decoding and parsing
 * one-byte text; the marks found must account for every non-ASCII byte, and `JSON.parse` must have
 * read the text exactly. `override` keys replace the document's top-level keys. The result is then
 * what {@link fromText} gives for the UTF-8 text; `undefined` when the bytes do not allow it, or the
 * document is of an older engine or invalid: decode the bytes as UTF-8 and use `fromText`.
 *
 * @example
 * ```ts
 * PipelineState.fromUtf8BytesFast(bytes) ?? PipelineState.fromText(bytes.toString("utf8"))
 * ```
 *
 * @since 0.1.0
 */
export const fromUtf8BytesFast = (
  bytes: Buffer,
  override?: { readonly [key: string]: Json }
): PipelineState | undefined => {
  try {
    if (bytes.indexOf(0x5c) !== -1) return undefined
    const text = bytes.toString("latin1")
    // each char of U+0080..U+00FF (one non-ASCII byte) takes two bytes in UTF-8
    const nonAscii = Buffer.byteLength(text, "utf8") - text.length
    if (nonAscii % 3 !== 0) return undefined
    const parsed: unknown = JSON.parse(text)
    if (!isRecord(parsed)) return undefined
    const doc = override === undefined ? parsed : { ...parsed, ...override }
    let found: InPlaceResult | undefined
    const owned = decodeOwned(doc, false, (sources) => {
      found = decodeParsedInPlace(sources, true)
      return found?.value
    })
    if (owned === undefined || Either.isLeft(owned)) return undefined
    const marks = found?.marks ?? 0
    if (marks * 3 !== nonAscii) return undefined
    return found === undefined || isExactParse(text, found) ? owned.right : undefined
  } catch {
    // text beyond the longest string, invalid JSON: the UTF-8 path says what is wrong
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// The local file
// ---------------------------------------------------------------------------------------------

/**
 * The text of the local `state.json`: typed JSON of the whole document, `_local` included,
 * indented by 2 spaces, with a final newline.
 *
 * @example
 * ```ts
 * PipelineState.toFileText(state) // Right('{\n  "_state_version": 0, ...')
 * ```
 *
 * @since 0.1.0
 */
export const toFileText = (state: PipelineState): Either.Either<string, NonSerializableStateValue> =>
  Either.map(
    stringify(withoutKeys(state, state.sources === NO_SOURCES ? new Set(["sources"]) : new Set()), { space: 2 }),
    (text) => `${text}\n`
  )

/**
 * Reads the text of a local `state.json` (ours or dlt's), validating the document.
 *
 * @example
 * ```ts
 * PipelineState.fromFileText(text) // Either<PipelineState, InvalidStateDocument>
 * ```
 *
 * @since 0.1.0
 */
export const fromFileText = (text: string): Either.Either<PipelineState, InvalidStateDocument> => fromText(text)

// ---------------------------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------------------------

const EMPTY_SLOT: Slot = {}

const isSlot = (value: StateValue | undefined): value is Slot => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * The slot of a source (`sources.<source>`), empty when absent. It includes its `resources` key.
 *
 * @example
 * ```ts
 * getSourceSlot(state, "chess").player_count
 * ```
 *
 * @since 0.1.0
 */
export const getSourceSlot = (state: PipelineState, source: string): Slot =>
  Object.hasOwn(state.sources, source) ? state.sources[source]! : EMPTY_SLOT

/**
 * The state with the slot of `source` replaced by `slot` (as given: keep `resources` in it to keep
 * the resource slots).
 *
 * @since 0.1.0
 */
export const withSourceSlot = (state: PipelineState, source: string, slot: Slot): PipelineState => {
  const sources: Record<string, Slot> = { ...state.sources }
  Object.defineProperty(sources, source, { value: slot, enumerable: true, writable: true, configurable: true })
  return { ...state, sources }
}

/**
 * The resource slots of a source (`sources.<source>.resources`), empty when absent.
 *
 * @since 0.1.0
 */
export const getResourceSlots = (state: PipelineState, source: string): Slot => {
  const resources = getSourceSlot(state, source).resources
  return isSlot(resources) ? resources : EMPTY_SLOT
}

/**
 * The slot of a resource (`sources.<source>.resources.<resource>`), empty when absent.
 *
 * @example
 * ```ts
 * getResourceSlot(state, "chess", "players_games").archives
 * ```
 *
 * @since 0.1.0
 */
export const getResourceSlot = (state: PipelineState, source: string, resource: string): Slot => {
  const resources = getResourceSlots(state, source)
  const slot = Object.hasOwn(resources, resource) ? resources[resource] : undefined
  return isSlot(slot) ? slot : EMPTY_SLOT
}

/**
 * The state with the slot of one resource replaced, creating the source slot if needed.
 *
 * @example
 * ```ts
 * withResourceSlot(state, "chess", "players_games", { archives: [] })
 * ```
 *
 * @since 0.1.0
 */
export const withResourceSlot = (state: PipelineState, source: string, resource: string, slot: Slot): PipelineState => {
  const resources: Record<string, StateValue> = { ...getResourceSlots(state, source) }
  Object.defineProperty(resources, resource, { value: slot, enumerable: true, writable: true, configurable: true })
  return withSourceSlot(state, source, { ...getSourceSlot(state, source), resources })
}

/**
 * The state without the slot of one resource (for `replace` resources and `drop`).
 *
 * @since 0.1.0
 */
export const withoutResourceSlot = (state: PipelineState, source: string, resource: string): PipelineState => {
  const resources = getResourceSlots(state, source)
  if (!Object.hasOwn(resources, resource)) return state
  return withSourceSlot(state, source, {
    ...getSourceSlot(state, source),
    resources: withoutKeys(resources, new Set([resource]))
  })
}

/**
 * The state with its `_local` section updated.
 *
 * @example
 * ```ts
 * withLocal(state, { first_run: false })
 * ```
 *
 * @since 0.1.0
 */
export const withLocal = (state: PipelineState, patch: Partial<LocalState>): PipelineState => ({
  ...state,
  _local: { ...state._local, ...patch } as LocalState
})
