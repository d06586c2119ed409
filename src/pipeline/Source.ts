/**
 * A source: a named group of resources sharing a source state slot. `withSetup` adds an effect that
 * runs before the resources (where the source state is read-only), e.g. to fetch configuration that
 * decides which resources exist. `withResources` and `decompose` (dlt's `with_resources` and
 * source decomposition) split a source into parts that run on their own, in parallel, in separate
 * processes or on separate machines; a run of a part owns only the state slots of its resources.
 *
 * @example
 * ```ts
 * import { Source } from "effect-pipestate"
 *
 * const chess = Source.make({ name: "chess", resources: [playersGames, playersProfiles] })
 * const gamesOnly = Source.withResources(chess, ["players_games"])
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Either, Option, Schema } from "effect"
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
  /** the name of the source state slot, `sources.<name>`; every part of a decomposed source keeps it */
  readonly name: string
  /**
   * The names of the resources this source runs, in order, when they are known before its setup
   * runs (`make`, and `withResources` of such a source); `None` when only the setup yields them
   * (`withSetup`).
   */
  readonly resourceNames: Option.Option<ReadonlyArray<string>>
  /**
   * `Some(names)`: this source runs only these resources (`withResources`, `decompose`). A run of
   * it owns the state slots `sources.<name>.resources.<resource>` of these resources and no other:
   * its commit must leave every other resource's slot as the destination holds it (it may also
   * change top-level keys of the source state, which the commit checks like any other change).
   * `None`: every resource the setup yields.
   */
  readonly selection: Option.Option<ReadonlyArray<string>>
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
  resourceNames: Option.some(options.resources.map((r) => r.name)),
  selection: Option.none(),
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
  resourceNames: Option.none(),
  selection: Option.none(),
  setup: Effect.map(
    options.setup,
    (a) => options.resources(a) as unknown as ReadonlyArray<Resource<ErrorOf<Rs[number]>, ResourceServices>>
  ) as Source<E1 | ErrorOf<Rs[number]>, Exclude<R1 | ContextOf<Rs[number]>, ResourceServices>>["setup"]
})

// ---------------------------------------------------------------------------------------------
// Selection and decomposition
// ---------------------------------------------------------------------------------------------

/**
 * A selection names resources the source does not have. `withResources` raises it when the
 * selected source's setup runs (the run fails before extracting anything); `decompose` at once
 * when the source's resources are known before setup, else when a group's setup runs.
 *
 * @since 0.1.0
 */
export class UnknownResources extends Schema.TaggedError<UnknownResources>()("UnknownResources", {
  source: Schema.String,
  /** the selected names the source does not have */
  unknown: Schema.Array(Schema.String),
  /** the names of the resources the source has, in order */
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const names = (list: ReadonlyArray<string>) => list.map((n) => JSON.stringify(n)).join(", ")
    return `source ${this.source} has no resource named ${names(this.unknown)}; its resources are: ${this.known.length === 0 ? "(none)" : names(this.known)}`
  }
}

/**
 * Groups that do not split a source: a resource in two groups or in none, an empty group, two
 * groups with one name, or default groups asked of a source whose resources are known only after
 * its setup.
 *
 * @since 0.1.0
 */
export class InvalidDecomposition extends Schema.TaggedError<InvalidDecomposition>()("InvalidDecomposition", {
  source: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot decompose source ${this.source}: ${this.reason}`
  }
}

/**
 * One part of a decomposed source: a name (stable: the orchestrator records `(run id, group)`
 * with it), the names of its resources, and the source running only them (`selection` =
 * `resources`), under the original source's name.
 *
 * @since 0.1.0
 */
export interface SourceGroup<E = never, R = never> {
  readonly name: string
  readonly resources: ReadonlyArray<string>
  readonly source: Source<E, R>
}

/**
 * The groups of `decompose`: a list of resource-name lists (each group is named after its
 * resources joined by `+`), or a record from group name to resource names.
 *
 * @since 0.1.0
 */
export type Groups = ReadonlyArray<ReadonlyArray<string>> | { readonly [group: string]: ReadonlyArray<string> }

const unique = (names: Iterable<string>): ReadonlyArray<string> => [...new Set(names)]

const quoteList = (names: Iterable<string>): string => [...names].map((n) => JSON.stringify(n)).join(", ")

// the resources of `resources` named in `wanted`, in the source's order; unknown names fail
const pick = <E, R>(
  sourceName: string,
  resources: ReadonlyArray<Resource<E, R>>,
  wanted: ReadonlyArray<string>
): Either.Either<ReadonlyArray<Resource<E, R>>, UnknownResources> => {
  const known = resources.map((r) => r.name)
  const has = new Set(known)
  const unknown = wanted.filter((n) => !has.has(n))
  if (unknown.length > 0) return Either.left(new UnknownResources({ source: sourceName, unknown, known }))
  const keep = new Set(wanted)
  return Either.right(resources.filter((r) => keep.has(r.name)))
}

// `source` restricted to `wanted`; `check` runs on the names the setup yields, before picking
const restrict = <E, R, E2>(
  source: Source<E, R>,
  wanted: ReadonlyArray<string>,
  check: (known: ReadonlyArray<string>) => Either.Either<void, E2>
): Source<E | E2 | UnknownResources, R> => ({
  _tag: "Source",
  name: source.name,
  resourceNames: Option.map(source.resourceNames, (known) => known.filter((n) => wanted.includes(n))),
  selection: Option.some(wanted),
  setup: Effect.flatMap(source.setup, (resources) =>
    Either.flatMap(check(resources.map((r) => r.name)), () => pick(source.name, resources, wanted))
  )
})

/**
 * dlt's `with_resources`: the source running only the named resources (in the source's order;
 * duplicate names count once). A run of it owns only their state slots (see
 * {@link Source.selection}); the other resources neither run nor have their tables or state
 * touched, and a `replace` resource outside the selection keeps its table and its state.
 *
 * Fails with {@link UnknownResources} listing the known names when a name is not a resource of
 * the source: when the source's setup runs (for `withSetup` sources, whose resources are known
 * only then; for every source, so that the error comes from the run that uses it). Selecting from
 * a selection selects among the selected resources only.
 *
 * @example
 * ```ts
 * const orders = Source.withResources(shop, ["orders", "order_items"])
 * yield* Pipeline.run(orders) // other resources' state slots stay as they are
 * ```
 *
 * @since 0.1.0
 */
export const withResources = <E, R>(source: Source<E, R>, names: Iterable<string>): Source<E | UnknownResources, R> =>
  restrict(source, unique(names), () => Either.void)

/**
 * The names of the resources a source runs, in order: `resourceNames` when known, else those its
 * setup yields (it runs the setup, so it needs what a run provides to the setup).
 *
 * @example
 * ```ts
 * const names = yield* Source.listResources(pipedrive) // ["deals", "persons"]
 * ```
 *
 * @since 0.1.0
 */
export const listResources = <E, R>(
  source: Source<E, R>
): Effect.Effect<ReadonlyArray<string>, E, R | SourceState | PipelineContext> =>
  Option.match(source.resourceNames, {
    onSome: Effect.succeed,
    onNone: () => Effect.map(source.setup, (resources) => resources.map((r) => r.name))
  })

const normalizeGroups = (
  sourceName: string,
  groups: Groups
): Either.Either<
  ReadonlyArray<{ readonly name: string; readonly resources: ReadonlyArray<string> }>,
  InvalidDecomposition
> => {
  const fail = (reason: string) => Either.left(new InvalidDecomposition({ source: sourceName, reason }))
  const entries: Array<{ name: string; resources: ReadonlyArray<string> }> = Array.isArray(groups)
    ? (groups as ReadonlyArray<ReadonlyArray<string>>).map((g) => ({ name: unique(g).join("+"), resources: unique(g) }))
    : Object.keys(groups).map((name) => ({
        name,
        resources: unique((groups as { readonly [group: string]: ReadonlyArray<string> })[name]!)
      }))
  if (entries.length === 0) return fail("no groups given")
  const names = new Set<string>()
  const owner = new Map<string, string>()
  for (const { name, resources } of entries) {
    if (resources.length === 0) return fail(`group ${JSON.stringify(name)} has no resources`)
    if (name.trim() === "") return fail("a group has an empty name")
    if (names.has(name)) return fail(`two groups are named ${JSON.stringify(name)}`)
    names.add(name)
    for (const resource of resources) {
      const other = owner.get(resource)
      if (other !== undefined) {
        return fail(
          `resource ${JSON.stringify(resource)} is in groups ${JSON.stringify(other)} and ${JSON.stringify(name)}; every resource must be in exactly one group`
        )
      }
      owner.set(resource, name)
    }
  }
  return Either.right(entries)
}

// every known resource in some group, every grouped name known
const checkCover = (
  sourceName: string,
  grouped: ReadonlySet<string>,
  known: ReadonlyArray<string>
): Either.Either<void, UnknownResources | InvalidDecomposition> => {
  const has = new Set(known)
  const unknown = [...grouped].filter((n) => !has.has(n))
  if (unknown.length > 0) return Either.left(new UnknownResources({ source: sourceName, unknown, known }))
  const missing = known.filter((n) => !grouped.has(n))
  if (missing.length > 0) {
    return Either.left(
      new InvalidDecomposition({
        source: sourceName,
        reason: `resources ${quoteList(missing)} are in no group; every resource must be in exactly one group`
      })
    )
  }
  return Either.void
}

/**
 * The source split into groups that run on their own (in parallel, in other processes, on other
 * machines): by default one group per resource, named after it; or the groups given, which must
 * put every resource of the source in exactly one group. Each group's `source` runs only its
 * resources (`withResources`), under the source's name, so that each run owns only its
 * resources' state slots; top-level source-state keys are shared (two groups that both change one
 * key conflict at commit; designate one group as the writer of such keys, as dlt advises).
 *
 * Checked at once when the source's resources are known before setup (`make`): a resource in two
 * groups or in none, an unknown name, an empty group, a duplicate group name. For a `withSetup`
 * source, the groups must be given (its resources are known only after setup: see
 * {@link listResources}); the disjointness checks run at once and the cover checks when each
 * group's setup runs, so a group of a decomposition that no longer covers the source fails
 * before extracting anything.
 *
 * @example
 * ```ts
 * const groups = yield* Source.decompose(shop) // [{ name: "orders", ... }, { name: "customers", ... }]
 * const named = yield* Source.decompose(shop, { sales: ["orders", "order_items"], people: ["customers"] })
 * yield* Effect.forEach(named, (group) => Pipeline.run(group.source), { concurrency: "unbounded" })
 * ```
 *
 * @since 0.1.0
 */
export const decompose = <E, R>(
  source: Source<E, R>,
  groups?: Groups
): Either.Either<
  ReadonlyArray<SourceGroup<E | UnknownResources | InvalidDecomposition, R>>,
  UnknownResources | InvalidDecomposition
> => {
  const given: Either.Either<
    ReadonlyArray<{ readonly name: string; readonly resources: ReadonlyArray<string> }>,
    InvalidDecomposition
  > = groups !== undefined
    ? normalizeGroups(source.name, groups)
    : Option.match(source.resourceNames, {
        onSome: (names) =>
          normalizeGroups(
            source.name,
            names.map((n) => [n])
          ),
        onNone: () =>
          Either.left(
            new InvalidDecomposition({
              source: source.name,
              reason:
                "its resources are known only after its setup runs: name the groups (Source.listResources gives the resource names)"
            })
          )
      })
  return Either.flatMap(given, (entries) => {
    const grouped = new Set(entries.flatMap((g) => g.resources))
    const cover = (known: ReadonlyArray<string>) => checkCover(source.name, grouped, known)
    const now = Option.match(source.resourceNames, { onSome: cover, onNone: () => Either.void })
    return Either.map(now, () =>
      entries.map(
        (g): SourceGroup<E | UnknownResources | InvalidDecomposition, R> => ({
          name: g.name,
          resources: g.resources,
          source: restrict(source, g.resources, cover)
        })
      )
    )
  })
}
