/**
 * The operations shared by `ResourceState` and `SourceState`: one named slot of the draft state.
 *
 * State values are copies. `get`, `toJSON` and the current value handed to `update`/`modify` are
 * deep copies the caller may change freely without changing the state; `set`/`update` store a deep
 * copy of the value, validated as stored, so a value changed after `set` changes nothing. A
 * read-only slot (a source's setup) hands out deep-frozen copies: changing one throws a
 * `TypeError` instead of silently doing nothing. Immutable values (BigDecimal, Uuid, CalendarDate,
 * TimeOfDay) are shared; Dates and Uint8Arrays are copied.
 *
 * @since 0.1.0
 */
import { Effect, Either, Option, ParseResult, Ref, Schema } from "effect"
import type * as PipelineState from "../state/PipelineState.js"
import * as StateValue from "../../state/StateValue.js"

/**
 * A write was attempted where state is read-only (a source's setup effect).
 *
 * @since 0.1.0
 */
export class ReadOnlyState extends Schema.TaggedError<ReadOnlyState>()("ReadOnlyState", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot write ${this.path}: ${this.reason}`
  }
}

/**
 * A key that belongs to pipestate itself (e.g. `resources` in a source slot) was written through the
 * user API.
 *
 * @since 0.1.0
 */
export class ReservedStateKey extends Schema.TaggedError<ReservedStateKey>()("ReservedStateKey", {
  path: Schema.String,
  key: Schema.String
}) {
  override get message(): string {
    return `the key "${this.key}" at ${this.path} is reserved by pipestate (it holds the resource slots); choose another key`
  }
}

/**
 * A stored value does not match the schema of a typed state key, or a value given to it cannot be
 * encoded by that schema.
 *
 * @since 0.1.0
 */
export class InvalidStateKeyValue extends Schema.TaggedError<InvalidStateKeyValue>()("InvalidStateKeyValue", {
  path: Schema.String,
  direction: Schema.Literal("decode", "encode"),
  issue: Schema.String,
  /** the command that resets the stored value, as a shell reads it (known inside a pipeline run) */
  reset: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const reset =
      this.reset === undefined
        ? "Reset it (drop the resource's state, or the source-state path, with `pipestate pipeline <name> drop`)"
        : `Reset it with \`${this.reset}\``
    return this.direction === "decode"
      ? `the state value at ${this.path} does not match its key's schema: ${this.issue}. ${reset}, or widen the schema`
      : `cannot store the value at ${this.path}: ${this.issue}`
  }
}

/**
 * Any failure of a state write.
 *
 * @since 0.1.0
 */
export type StateWriteError = StateValue.NonSerializableStateValue | ReadOnlyState | ReservedStateKey

/**
 * A slot: a JSON object of state values inside the draft state document.
 *
 * @since 0.1.0
 */
export type Slot = { readonly [key: string]: StateValue.StateValue }

/**
 * The operations on one slot. `update` runs `f` atomically against the newest value, so concurrent
 * fibers never lose an update.
 *
 * @since 0.1.0
 */
export interface StateSlot {
  /** the slot's path in the state document, e.g. `sources.chess.resources.players_games` */
  readonly path: string
  /** the command that resets a key of this slot, when known (errors of typed keys name it) */
  readonly resetCommand?: ((key: string) => string) | undefined
  readonly get: (key: string) => Effect.Effect<Option.Option<StateValue.StateValue>>
  readonly set: (key: string, value: unknown) => Effect.Effect<void, StateWriteError>
  readonly update: (
    key: string,
    f: (current: Option.Option<StateValue.StateValue>) => unknown
  ) => Effect.Effect<StateValue.StateValue, StateWriteError>
  readonly setDefault: (key: string, value: unknown) => Effect.Effect<StateValue.StateValue, StateWriteError>
  readonly delete: (key: string) => Effect.Effect<void, ReadOnlyState | ReservedStateKey>
  readonly toJSON: Effect.Effect<Slot>
  /**
   * The atomic primitive under `set`, `update` and `setDefault`: `f` sees the newest value and
   * returns a result plus, optionally, the value to store; a `Left` leaves the slot untouched.
   */
  readonly modify: <A, E>(
    key: string,
    f: (current: Option.Option<StateValue.StateValue>) => Either.Either<readonly [A, Option.Option<unknown>], E>
  ) => Effect.Effect<A, E | StateWriteError>
}

/**
 * Where a slot lives inside the state document, and how to replace it immutably.
 *
 * @since 0.1.0
 */
export interface SlotLens {
  readonly path: string
  readonly read: (state: PipelineState.PipelineState) => Slot
  readonly write: (state: PipelineState.PipelineState, slot: Slot) => PipelineState.PipelineState
  /** keys the user API may not write (they hold nested slots) */
  readonly reserved: ReadonlyArray<string>
  /** the command that resets a key of this slot, for errors (a pipeline run knows it) */
  readonly resetCommand?: ((key: string) => string) | undefined
}

// ---------------------------------------------------------------------------------------------
// Copies
// ---------------------------------------------------------------------------------------------

const copyAny = (value: unknown, freeze: boolean): unknown => {
  if (typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) {
    const n = value.length
    const out: Array<unknown> = new Array(n)
    for (let i = 0; i < n; i++) out[i] = copyAny(value[i], freeze)
    return freeze ? Object.freeze(out) : out
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) {
    const record = value as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(record)) {
      const item = record[key]
      if (item === undefined) continue
      if (key === "__proto__") {
        Object.defineProperty(out, key, {
          value: copyAny(item, freeze),
          enumerable: true,
          writable: true,
          configurable: true
        })
      } else {
        out[key] = copyAny(item, freeze)
      }
    }
    return freeze ? Object.freeze(out) : out
  }
  if (value instanceof Date) return new Date(value.getTime())
  if (value instanceof Uint8Array) return new Uint8Array(value)
  // immutable values (BigDecimal, Uuid, CalendarDate, TimeOfDay) are shared; anything else is
  // returned as it is, and validation refuses it
  return value
}

/**
 * A deep copy of a state value: arrays, plain objects, Dates and Uint8Arrays are new; immutable
 * values are shared; `undefined` object entries are left out (as the encoder leaves them out).
 * Throws `RangeError` on a circular value (`copyChecked` reports it as a state error instead).
 *
 * @example
 * ```ts
 * const stored = StateSlot.copy({ seen: ["a"] })
 * ```
 *
 * @since 0.2.0
 */
export const copy = <A>(value: A): A => copyAny(value, false) as A

/**
 * A deep copy whose arrays and plain objects are frozen: what a read-only slot hands out.
 *
 * @since 0.2.0
 */
export const frozenCopy = <A>(value: A): A => copyAny(value, true) as A

/**
 * The copy of `value` that a slot stores, validated: the failure names `path` and what is wrong
 * (a circular value included).
 */
const copyChecked = (
  value: unknown,
  path: string
): Either.Either<StateValue.StateValue, StateValue.NonSerializableStateValue> => {
  let copied: unknown
  try {
    copied = copyAny(value, false)
  } catch {
    // a circular value or a throwing getter: the encoder names the path and the reason
    return Either.flatMap(StateValue.encode(value, path), () =>
      Either.left(new StateValue.NonSerializableStateValue({ path, reason: "the value could not be copied" }))
    )
  }
  // the copy is what is stored, so the copy is what is validated
  return Either.map(StateValue.encode(copied, path), () => copied as StateValue.StateValue)
}

/**
 * Validates the state values of a draft before it is committed: every value under `sources` must
 * be encodable. Slots only ever store validated copies, so this fails only when a draft was
 * changed by other means; the commit may call it as a last check.
 *
 * @example
 * ```ts
 * const checked = StateSlot.validateDraft(yield* Ref.get(draft)) // Either<PipelineState, NonSerializableStateValue>
 * ```
 *
 * @since 0.2.0
 */
export const validateDraft = (
  state: PipelineState.PipelineState
): Either.Either<PipelineState.PipelineState, StateValue.NonSerializableStateValue> =>
  Either.map(StateValue.encode(state.sources, "sources"), () => state)

const keyPath = (slotPath: string, key: string): string =>
  /^[A-Za-z_$][\w$]*$/.test(key) ? `${slotPath}.${key}` : `${slotPath}[${JSON.stringify(key)}]`

/**
 * Builds the slot operations over a draft state reference. `readOnly` carries the reason writes are
 * refused.
 *
 * @since 0.1.0
 */
export const make = (
  draft: Ref.Ref<PipelineState.PipelineState>,
  lens: SlotLens,
  readOnly: Option.Option<string> = Option.none()
): StateSlot => {
  const guard = (key: string): Either.Either<void, ReadOnlyState | ReservedStateKey> => {
    if (Option.isSome(readOnly)) {
      return Either.left(new ReadOnlyState({ path: keyPath(lens.path, key), reason: readOnly.value }))
    }
    if (lens.reserved.includes(key)) return Either.left(new ReservedStateKey({ path: lens.path, key }))
    return Either.right(undefined)
  }

  // the encoded form is discarded: this pass only proves the copy can be committed, so the
  // failure names the path where the user wrote it rather than surfacing at commit
  const validate = (key: string, value: unknown): Either.Either<StateValue.StateValue, StateWriteError> =>
    Either.flatMap(guard(key), () => copyChecked(value, keyPath(lens.path, key)))

  // what callers see: a copy they cannot change the state through (frozen when read-only)
  const view = Option.isSome(readOnly) ? frozenCopy : copy

  const modify = <A, E>(
    key: string,
    f: (current: Option.Option<StateValue.StateValue>) => Either.Either<readonly [A, Option.Option<unknown>], E>
  ): Effect.Effect<A, E | StateWriteError> =>
    Ref.modify(draft, (state): readonly [Either.Either<A, E | StateWriteError>, PipelineState.PipelineState] => {
      const slot = lens.read(state)
      const current = Object.hasOwn(slot, key) ? Option.some(view(slot[key] as StateValue.StateValue)) : Option.none()
      const result = f(current)
      if (Either.isLeft(result)) return [Either.left(result.left), state]
      const [out, next] = result.right
      if (Option.isNone(next)) return [Either.right(out), state]
      const checked = validate(key, next.value)
      if (Either.isLeft(checked)) return [Either.left(checked.left), state]
      return [Either.right(out), lens.write(state, { ...slot, [key]: checked.right })]
    }).pipe(Effect.flatten)

  return {
    path: lens.path,
    resetCommand: lens.resetCommand,
    modify,
    get: (key) =>
      Effect.map(Ref.get(draft), (state) => {
        const slot = lens.read(state)
        return Object.hasOwn(slot, key) ? Option.some(view(slot[key] as StateValue.StateValue)) : Option.none()
      }),
    set: (key, value) => modify(key, () => Either.right([undefined, Option.some(value)] as const)),
    update: (key, f) =>
      modify(key, (current) => {
        const next = f(current)
        return Either.right([next as StateValue.StateValue, Option.some(next)] as const)
      }),
    setDefault: (key, value) =>
      modify(key, (current) =>
        Option.isSome(current)
          ? Either.right([current.value, Option.none()] as const)
          : Either.right([value as StateValue.StateValue, Option.some(value)] as const)
      ),
    delete: (key) =>
      Either.match(guard(key), {
        onLeft: Effect.fail,
        onRight: () =>
          Ref.update(draft, (state) => {
            const slot = lens.read(state)
            if (!Object.hasOwn(slot, key)) return state
            const { [key]: _removed, ...rest } = slot
            return lens.write(state, rest)
          })
      }),
    toJSON: Effect.map(Ref.get(draft), (state) => {
      const slot = lens.read(state)
      if (lens.reserved.length === 0) return view(slot)
      const visible: Record<string, StateValue.StateValue> = {}
      for (const [k, v] of Object.entries(slot)) if (!lens.reserved.includes(k)) visible[k] = v
      return view(visible)
    })
  }
}

/**
 * A typed state key: its value is validated by a Schema on every read and write. The encoded side of
 * the schema is what the state stores, so it must be a state value (JSON, Date, BigDecimal, bytes).
 *
 * @since 0.1.0
 */
export interface StateKey<A, R> {
  readonly name: string
  /** the stored value decoded by the schema, or the default when the key is absent */
  readonly get: Effect.Effect<A, InvalidStateKeyValue, R>
  readonly set: (value: A) => Effect.Effect<void, InvalidStateKeyValue | StateWriteError, R>
  /** atomic: `f` runs against the newest value */
  readonly update: (f: (current: A) => A) => Effect.Effect<A, InvalidStateKeyValue | StateWriteError, R>
}

// the value with every Timestamp inside that a Date holds exactly (UTC, whole milliseconds: what a
// stored Date reads back as) as a Date; the same object when it holds none
const timestampsAsDates = (value: unknown, depth: number): unknown => {
  if (value instanceof StateValue.Timestamp) {
    return value.offsetSeconds === 0 && value.microsecond % 1000 === 0 ? value.toDate() : value
  }
  if (typeof value !== "object" || value === null || depth > 64) return value
  if (Array.isArray(value)) {
    let out: Array<unknown> | undefined
    value.forEach((item, i) => {
      const next = timestampsAsDates(item, depth + 1)
      if (next !== item) {
        out ??= [...value]
        out[i] = next
      }
    })
    return out ?? value
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  let out: Record<string, unknown> | undefined
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key]
    const next = timestampsAsDates(item, depth + 1)
    if (next !== item) {
      out ??= { ...(value as Record<string, unknown>) }
      Object.defineProperty(out, key, { value: next, enumerable: true, writable: true, configurable: true })
    }
  }
  return out ?? value
}

/**
 * Builds a typed key over the slot that `slot` yields.
 *
 * @since 0.1.0
 */
export const makeKey = <A, I, R>(
  slot: Effect.Effect<StateSlot, never, R>,
  name: string,
  schema: Schema.Schema<A, I, never>,
  makeDefault: () => NoInfer<A>
): StateKey<A, R> => {
  const decode = Schema.decodeUnknownEither(schema)
  const encode = Schema.encodeEither(schema)
  // state reads a datetime back as a Timestamp: a key whose schema holds a Date (Schema.DateFromSelf)
  // gets the Date it stored
  const decodeStored = (value: StateValue.StateValue) => {
    const decoded = decode(value)
    if (Either.isRight(decoded)) return decoded
    const dated = timestampsAsDates(value, 0)
    return dated === value ? decoded : Either.orElse(decode(dated), () => decoded)
  }
  const read = (s: StateSlot, current: Option.Option<StateValue.StateValue>): Either.Either<A, InvalidStateKeyValue> =>
    Option.match(current, {
      onNone: () => Either.right(makeDefault()),
      onSome: (value) =>
        Either.mapLeft(
          decodeStored(value),
          (error) =>
            new InvalidStateKeyValue({
              path: keyPath(s.path, name),
              direction: "decode",
              issue: ParseResult.TreeFormatter.formatErrorSync(error),
              ...(s.resetCommand === undefined ? {} : { reset: s.resetCommand(name) })
            })
        )
    })
  const write = (s: StateSlot, value: A): Either.Either<I, InvalidStateKeyValue> =>
    Either.mapLeft(
      encode(value),
      (error) =>
        new InvalidStateKeyValue({
          path: keyPath(s.path, name),
          direction: "encode",
          issue: ParseResult.TreeFormatter.formatErrorSync(error)
        })
    )
  return {
    name,
    get: Effect.flatMap(slot, (s) => Effect.flatMap(s.get(name), (current) => read(s, current))),
    set: (value) => Effect.flatMap(slot, (s) => Effect.flatMap(write(s, value), (encoded) => s.set(name, encoded))),
    update: (f) =>
      Effect.flatMap(slot, (s) =>
        // decode → f → encode runs inside the slot's atomic modify, so concurrent updates never interleave
        s.modify(name, (current) =>
          Either.flatMap(read(s, current), (decoded) => {
            const next = f(decoded)
            return Either.map(write(s, next), (encoded) => [next, Option.some<unknown>(encoded)] as const)
          })
        )
      )
  }
}
