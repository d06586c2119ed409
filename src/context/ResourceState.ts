/**
 * `ResourceState`: the resource's private state slot, `sources.<source>.resources.<resource>`.
 * Values are copies: what `get` returns can be changed freely without changing the state, and
 * what `set` stores is a copy taken (and validated) at that moment.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { ResourceState } from "effect-pipestate"
 *
 * const Archives = ResourceState.key("archives", Schema.Array(Schema.String), () => [])
 *
 * const program = Effect.gen(function* () {
 *   const seen = yield* Archives.get
 *   yield* Archives.update((list) => [...list, "https://example.com/2024/01"])
 *   return seen
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, type Option, Ref, type Schema } from "effect"
import * as PipelineState from "../internal/state/PipelineState.js"
import type * as StateValue from "../state/StateValue.js"
import { resourceLens } from "../internal/context/Slots.js"
import * as StateSlot from "../internal/context/StateSlot.js"

/**
 * @since 0.1.0
 */
export interface ResourceStateShape extends StateSlot.StateSlot {
  readonly sourceName: string
  readonly resourceName: string
}

/**
 * The resource's private slot. The pipeline provides one per resource while it runs.
 *
 * @since 0.1.0
 */
export class ResourceState extends Context.Tag("pipestate/ResourceState")<ResourceState, ResourceStateShape>() {}

/**
 * The slot of `resource` in `source` over a draft state.
 *
 * @since 0.1.0
 */
export const make = (
  draft: Ref.Ref<PipelineState.PipelineState>,
  sourceName: string,
  resourceName: string,
  options: { readonly resetCommand?: ((key: string) => string) | undefined } = {}
): ResourceStateShape => ({
  ...StateSlot.make(draft, { ...resourceLens(sourceName, resourceName), resetCommand: options.resetCommand }),
  sourceName,
  resourceName
})

/**
 * A layer over a draft state shared with other services.
 *
 * @since 0.1.0
 */
export const layer = (
  draft: Ref.Ref<PipelineState.PipelineState>,
  sourceName: string,
  resourceName: string,
  options: { readonly resetCommand?: ((key: string) => string) | undefined } = {}
): Layer.Layer<ResourceState> => Layer.succeed(ResourceState, make(draft, sourceName, resourceName, options))

/**
 * A resource slot with no pipeline: a fresh in-memory state that nothing persists, for running a
 * resource on its own (as dlt does outside a pipeline) and for tests.
 *
 * @since 0.1.0
 */
export const layerScratch = (
  options: { readonly sourceName?: string; readonly resourceName?: string } = {}
): Layer.Layer<ResourceState> =>
  Layer.effect(
    ResourceState,
    Effect.map(Ref.make(PipelineState.empty({ pipelineName: "scratch", datasetName: "scratch" })), (draft) =>
      make(draft, options.sourceName ?? "scratch", options.resourceName ?? "scratch")
    )
  )

/** @since 0.1.0 */
export const get = (key: string): Effect.Effect<Option.Option<StateValue.StateValue>, never, ResourceState> =>
  Effect.flatMap(ResourceState, (slot) => slot.get(key))

/** @since 0.1.0 */
export const set = (key: string, value: unknown): Effect.Effect<void, StateSlot.StateWriteError, ResourceState> =>
  Effect.flatMap(ResourceState, (slot) => slot.set(key, value))

/**
 * Atomically replaces the value at `key` with `f(current)`.
 *
 * @since 0.1.0
 */
export const update = (
  key: string,
  f: (current: Option.Option<StateValue.StateValue>) => unknown
): Effect.Effect<StateValue.StateValue, StateSlot.StateWriteError, ResourceState> =>
  Effect.flatMap(ResourceState, (slot) => slot.update(key, f))

/**
 * Returns the value at `key`, storing `value` first when the key is absent (Python's `setdefault`).
 *
 * @since 0.1.0
 */
export const setDefault = (
  key: string,
  value: unknown
): Effect.Effect<StateValue.StateValue, StateSlot.StateWriteError, ResourceState> =>
  Effect.flatMap(ResourceState, (slot) => slot.setDefault(key, value))

/** @since 0.1.0 */
export const remove = (
  key: string
): Effect.Effect<void, StateSlot.ReadOnlyState | StateSlot.ReservedStateKey, ResourceState> =>
  Effect.flatMap(ResourceState, (slot) => slot.delete(key))

/**
 * The whole slot as a plain object.
 *
 * @since 0.1.0
 */
export const toJSON: Effect.Effect<StateSlot.Slot, never, ResourceState> = Effect.flatMap(
  ResourceState,
  (slot) => slot.toJSON
)

/**
 * A typed key in the resource slot, validated by `schema` on every read and write.
 *
 * @since 0.1.0
 */
export const key = <A, I>(
  name: string,
  schema: Schema.Schema<A, I, never>,
  makeDefault: () => NoInfer<A>
): StateSlot.StateKey<A, ResourceState> => StateSlot.makeKey(ResourceState, name, schema, makeDefault)
