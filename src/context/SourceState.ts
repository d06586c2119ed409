/**
 * `SourceState`: the source's shared state slot, `sources.<source>`, visible to every resource of
 * the source. `update` is atomic, so resources running concurrently never lose each other's writes.
 * In a source's setup effect the slot is read-only all the way down: `set` fails with
 * `ReadOnlyState`, and `get` returns deep-frozen copies (changing one throws a `TypeError`).
 * Elsewhere values are copies, as in `ResourceState`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { SourceState } from "effect-pipestate"
 *
 * const FieldNames = SourceState.key("field_names", Schema.Record({ key: Schema.String, value: Schema.String }), () => ({}))
 *
 * const rename = (row: Record<string, unknown>) =>
 *   Effect.map(FieldNames.get, (names) =>
 *     Object.fromEntries(Object.entries(row).map(([k, v]) => [names[k] ?? k, v])))
 * ```
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, Ref, type Schema } from "effect"
import * as PipelineState from "../internal/state/PipelineState.js"
import type * as StateValue from "../state/StateValue.js"
import { sourceLens } from "../internal/context/Slots.js"
import * as StateSlot from "../internal/context/StateSlot.js"

/** @since 0.1.0 */
export interface SourceStateShape extends StateSlot.StateSlot {
  readonly sourceName: string
  readonly readOnly: boolean
}

/**
 * The source's shared slot. The key `resources` is reserved: it holds the resource slots.
 *
 * @since 0.1.0
 */
export class SourceState extends Context.Tag("pipestate/SourceState")<SourceState, SourceStateShape>() {}

const SETUP_READ_ONLY =
  "source state is read-only in a source's setup effect (it runs before any resource and is not a run of its own); write it from a resource"

/**
 * The slot of `source` over a draft state; `readOnly` is for source setup effects.
 *
 * @since 0.1.0
 */
export const make = (
  draft: Ref.Ref<PipelineState.PipelineState>,
  sourceName: string,
  options: { readonly readOnly?: boolean; readonly resetCommand?: ((key: string) => string) | undefined } = {}
): SourceStateShape => ({
  ...StateSlot.make(
    draft,
    { ...sourceLens(sourceName), resetCommand: options.resetCommand },
    options.readOnly ? Option.some(SETUP_READ_ONLY) : Option.none()
  ),
  sourceName,
  readOnly: options.readOnly ?? false
})

/** @since 0.1.0 */
export const layer = (
  draft: Ref.Ref<PipelineState.PipelineState>,
  sourceName: string,
  options: { readonly readOnly?: boolean; readonly resetCommand?: ((key: string) => string) | undefined } = {}
): Layer.Layer<SourceState> => Layer.succeed(SourceState, make(draft, sourceName, options))

/**
 * A source slot with no pipeline: a fresh in-memory state that nothing persists.
 *
 * @since 0.1.0
 */
export const layerScratch = (options: { readonly sourceName?: string } = {}): Layer.Layer<SourceState> =>
  Layer.effect(
    SourceState,
    Effect.map(Ref.make(PipelineState.empty({ pipelineName: "scratch", datasetName: "scratch" })), (draft) =>
      make(draft, options.sourceName ?? "scratch")
    )
  )

/** @since 0.1.0 */
export const get = (key: string): Effect.Effect<Option.Option<StateValue.StateValue>, never, SourceState> =>
  Effect.flatMap(SourceState, (slot) => slot.get(key))

/** @since 0.1.0 */
export const set = (key: string, value: unknown): Effect.Effect<void, StateSlot.StateWriteError, SourceState> =>
  Effect.flatMap(SourceState, (slot) => slot.set(key, value))

/**
 * Atomically replaces the value at `key` with `f(current)`; concurrent updates never interleave.
 *
 * @since 0.1.0
 */
export const update = (
  key: string,
  f: (current: Option.Option<StateValue.StateValue>) => unknown
): Effect.Effect<StateValue.StateValue, StateSlot.StateWriteError, SourceState> =>
  Effect.flatMap(SourceState, (slot) => slot.update(key, f))

/** @since 0.1.0 */
export const setDefault = (
  key: string,
  value: unknown
): Effect.Effect<StateValue.StateValue, StateSlot.StateWriteError, SourceState> =>
  Effect.flatMap(SourceState, (slot) => slot.setDefault(key, value))

/** @since 0.1.0 */
export const remove = (
  key: string
): Effect.Effect<void, StateSlot.ReadOnlyState | StateSlot.ReservedStateKey, SourceState> =>
  Effect.flatMap(SourceState, (slot) => slot.delete(key))

/**
 * The slot as a plain object, without the reserved `resources` key.
 *
 * @since 0.1.0
 */
export const toJSON: Effect.Effect<StateSlot.Slot, never, SourceState> = Effect.flatMap(
  SourceState,
  (slot) => slot.toJSON
)

/**
 * A typed key in the source slot, validated by `schema` on every read and write.
 *
 * @since 0.1.0
 */
export const key = <A, I>(
  name: string,
  schema: Schema.Schema<A, I, never>,
  makeDefault: () => NoInfer<A>
): StateSlot.StateKey<A, SourceState> => StateSlot.makeKey(SourceState, name, schema, makeDefault)
