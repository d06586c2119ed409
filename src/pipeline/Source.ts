/**
 * A source: a named group of resources sharing a source state slot. `withSetup` adds an effect that
 * runs before the resources (where the source state is read-only), e.g. to fetch configuration that
 * decides which resources exist.
 *
 * @example
 * ```ts
 * import { Source } from "pipestate"
 *
 * const chess = Source.make({ name: "chess", resources: [playersGames] })
 * ```
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { PipelineContext } from "../context/PipelineContext.js"
import type { SourceState } from "../context/SourceState.js"
import type { Resource, ResourceServices } from "./Resource.js"

/**
 * A source whose resources fail with `E` and need `R` besides the services the pipeline provides.
 *
 * @since 0.1.0
 */
export interface Source<E = never, R = never> {
  readonly _tag: "Source"
  readonly name: string
  /** runs before any resource, with the source state read-only; yields the resources to run */
  readonly setup: Effect.Effect<ReadonlyArray<Resource<E, R | ResourceServices>>, E, R | SourceState | PipelineContext>
}

type AnyResource = Resource<unknown, unknown>
type ErrorOf<X> = X extends Resource<infer E, infer _R> ? E : never
type ContextOf<X> = X extends Resource<infer _E, infer R> ? R : never

/**
 * A source with a fixed list of resources.
 *
 * @since 0.1.0
 */
export const make = <const Rs extends ReadonlyArray<AnyResource>>(options: {
  readonly name: string
  readonly resources: Rs
}): Source<ErrorOf<Rs[number]>, Exclude<ContextOf<Rs[number]>, ResourceServices>> => ({
  _tag: "Source",
  name: options.name,
  setup: Effect.succeed(options.resources as unknown as ReadonlyArray<Resource<ErrorOf<Rs[number]>, ResourceServices>>)
})

/**
 * A source whose `setup` effect runs first (source state read-only) and whose resources are built
 * from its result.
 *
 * @example
 * ```ts
 * const pipedrive = Source.withSetup({
 *   name: "pipedrive",
 *   setup: SourceState.get("custom_fields"),
 *   resources: (fields) => [deals(fields), persons(fields)]
 * })
 * ```
 *
 * @since 0.1.0
 */
export const withSetup = <A, E1, R1, const Rs extends ReadonlyArray<AnyResource>>(options: {
  readonly name: string
  readonly setup: Effect.Effect<A, E1, R1>
  readonly resources: (setup: A) => Rs
}): Source<E1 | ErrorOf<Rs[number]>, Exclude<R1 | ContextOf<Rs[number]>, ResourceServices>> => ({
  _tag: "Source",
  name: options.name,
  setup: Effect.map(
    options.setup,
    (a) => options.resources(a) as unknown as ReadonlyArray<Resource<ErrorOf<Rs[number]>, ResourceServices>>
  ) as Source<E1 | ErrorOf<Rs[number]>, Exclude<R1 | ContextOf<Rs[number]>, ResourceServices>>["setup"]
})
