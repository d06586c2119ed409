/**
 * Dropping resources and resetting state (`pipestate pipeline <name> drop`), with dlt's semantics:
 *
 * - resources are named exactly or by `re:<regex>` (JavaScript syntax, searched anywhere in the
 *   name as Python's `re.search` does: anchor it with `^...$` to match whole names). They are
 *   matched against the resource slots in the state (`sources.<s>.resources.<r>`): a resource is
 *   known once it stored state. A dropped resource loses its slot and its table; a table several
 *   resources write (the stored schema records them all) is dropped only when all of them are
 *   selected, else the drop fails with {@link SharedTable} before anything changes;
 * - `statePaths` are JSONPath expressions relative to each source state (the `resources` key is
 *   invisible to them); they reset state and never touch a table;
 * - `dropAll` drops every resource's table and the whole source state;
 * - `_dlt*` tables are never dropped.
 *
 * The state does not record table names, so a resource's table is its name normalized as the
 * pipeline normalizes table names (`Normalize.normalizeIdentifier`), unless `tableOf` says
 * otherwise (code that knows its resources, e.g. through {@link tablesOf}, passes it).
 *
 * {@link plan} is pure; {@link apply} reads the state under the working-dir lock, asks for
 * confirmation and commits the new state version with the table drops in ONE transaction, in a
 * load of its own, then writes the state locally.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Destination, Drop, Pipeline } from "effect-pipestate"
 *
 * const outcome = await Effect.runPromise(
 *   Drop.apply({ resources: ["re:^players"], statePaths: ["$.cursor"] }).pipe(
 *     Effect.provide(Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data" })),
 *     Effect.provide(Destination.sqlite())
 *   )
 * )
 * if (outcome._tag === "Dropped") console.log(`state version ${outcome.version}`)
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Either, Option, Schema } from "effect"
import type { Destination, DestinationError, StateConflict } from "../destination/Destination.js"
import * as StoredSchema from "../internal/schema/StoredSchema.js"
import * as PipelineState from "../internal/state/PipelineState.js"
import * as StatePath from "../internal/state/StatePath.js"
import * as StateVersion from "../internal/state/StateVersion.js"
import { normalizeIdentifier } from "../internal/pipeline/Normalize.js"
import type { Pipeline } from "./PipelineConfig.js"
import type { Resource } from "./Resource.js"
import * as Schemas from "../internal/pipeline/Schemas.js"
import * as Session from "../internal/pipeline/Session.js"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * Resources named exactly that have no slot in the state.
 *
 * @example
 * ```ts
 * // no resource named "player" in the state of this pipeline; known resources: chess.players_games
 * ```
 *
 * @since 0.1.0
 */
export class UnknownResource extends Schema.TaggedError<UnknownResource>()("UnknownResource", {
  names: Schema.Array(Schema.String),
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const names = this.names.map((n) => JSON.stringify(n)).join(", ")
    const known =
      this.known.length === 0
        ? "the state holds no resources"
        : `known resources: ${this.known.join(", ")} (source.resource)`
    return (
      `no resource named ${names} in the state of this pipeline; ${known}. ` +
      "A resource is known once it stored state; match names by pattern with re:<regex>."
    )
  }
}

/**
 * Sources named exactly that are not in the state.
 *
 * @since 0.1.0
 */
export class UnknownSource extends Schema.TaggedError<UnknownSource>()("UnknownSource", {
  names: Schema.Array(Schema.String),
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const known = this.known.length === 0 ? "the state holds no sources" : `known sources: ${this.known.join(", ")}`
    return `no source named ${this.names.map((n) => JSON.stringify(n)).join(", ")} in the state of this pipeline; ${known}.`
  }
}

/**
 * A `re:` pattern that is not a valid regular expression.
 *
 * @since 0.1.0
 */
export class InvalidResourcePattern extends Schema.TaggedError<InvalidResourcePattern>()("InvalidResourcePattern", {
  pattern: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid pattern ${JSON.stringify(this.pattern)}: ${this.reason}. Write re:<regex> in JavaScript syntax, e.g. re:^players_`
  }
}

/**
 * Nothing was selected: no resource, no `dropAll`, no state path.
 *
 * @since 0.1.0
 */
export class EmptySelection extends Schema.TaggedError<EmptySelection>()("EmptySelection", {}) {
  override get message(): string {
    return "nothing to drop was selected: name resources (exactly or as re:<regex>), or use --drop-all or --state-paths <JSONPath>"
  }
}

/**
 * The selected resources write a table that other resources, not selected, write too: dropping the
 * table would lose their rows while they keep their state (their next run would not load them
 * again). Nothing was changed. Select every writer of the table, or drop state only.
 *
 * @example
 * ```ts
 * // table shared is also written by t10src.b, which is not selected: dropping it would lose their rows ...
 * // select them too: drop a b (or keep the table with --state-only)
 * ```
 *
 * @since 0.1.0
 */
export class SharedTable extends Schema.TaggedError<SharedTable>()("SharedTable", {
  conflicts: Schema.Array(
    Schema.Struct({
      table: Schema.String,
      /** the selected writers, as `source.resource` */
      selected: Schema.Array(Schema.String),
      /** the writers not selected, as `source.resource` */
      others: Schema.Array(Schema.String)
    })
  ),
  /** the resource names that select every writer */
  resources: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const tables = this.conflicts
      .map(
        (c) =>
          `table ${c.table} is written by ${c.selected.join(", ")} (selected) and also by ${c.others.join(", ")} (not selected)`
      )
      .join("; ")
    return (
      `${tables}: dropping the table would lose the rows of the resources not selected while they keep their state, ` +
      `so nothing was dropped. Select them too: drop ${this.resources.join(" ")} (or keep the tables with --state-only)`
    )
  }
}

// ---------------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------------

/**
 * What to drop.
 *
 * @since 0.1.0
 */
export interface Selection {
  /** resource names, exact or `re:<regex>` */
  readonly resources?: ReadonlyArray<string> | undefined
  /** every resource's table and the whole source state */
  readonly dropAll?: boolean | undefined
  /** JSONPath expressions relative to the source state (its `resources` key excluded) */
  readonly statePaths?: ReadonlyArray<string> | undefined
  /** only these sources (exact or `re:<regex>`); default: every source in the state */
  readonly sources?: ReadonlyArray<string> | undefined
  /** drop resource state only, keep the tables */
  readonly stateOnly?: boolean | undefined
  /**
   * a resource's table when no stored schema names its tables; default: its name normalized as
   * table names are
   */
  readonly tableOf?: ((source: string, resource: string) => string) | undefined
  /**
   * the sources' stored schemas (by source name): resources are found through them too (those that
   * never stored state), and a resource's tables are the ones the schema gives it
   */
  readonly schemas?: ReadonlyMap<string, StoredSchema.StoredSchema> | undefined
}

/**
 * A resource whose slot goes. `table` is `null` when no table goes with it (`stateOnly`, or a
 * reserved `_dlt*` name).
 *
 * @since 0.1.0
 */
export interface DroppedResource {
  readonly source: string
  readonly resource: string
  /** the tables that go with it (none with `stateOnly`, or when they are all reserved `_dlt*`) */
  readonly tables: ReadonlyArray<string>
  /** the resource has a state slot (a resource found only through the schema has none) */
  readonly hasState: boolean
}

/**
 * A location reset by a state path, as `StatePath.format` prints it, in a source's state.
 *
 * @since 0.1.0
 */
export interface ResetPath {
  readonly source: string
  readonly path: string
}

/**
 * The result of {@link plan}: what goes, and the state after it (version not bumped yet).
 *
 * @since 0.1.0
 */
export interface DropPlan {
  readonly resources: ReadonlyArray<DroppedResource>
  /** tables to drop, sorted, never `_dlt*` */
  readonly tables: ReadonlyArray<string>
  /** the tables dropped from each source's stored schema */
  readonly schemaTables: ReadonlyMap<string, ReadonlyArray<string>>
  /** `_dlt*` tables a dropped resource maps to, kept */
  readonly keptReservedTables: ReadonlyArray<string>
  /** sources whose whole state goes (`dropAll`) */
  readonly sources: ReadonlyArray<string>
  /** locations reset by `statePaths` */
  readonly statePaths: ReadonlyArray<ResetPath>
  /** things worth knowing that do not stop the drop (a pattern that matched nothing) */
  readonly warnings: ReadonlyArray<string>
  /** the state after the drop */
  readonly state: PipelineState.PipelineState
  /** true when nothing would change */
  readonly isEmpty: boolean
}

const isPattern = (name: string): boolean => name.startsWith("re:")

const compile = (pattern: string): Either.Either<RegExp, InvalidResourcePattern> =>
  Either.try({
    try: () => new RegExp(pattern.slice(3)),
    catch: (error) =>
      new InvalidResourcePattern({ pattern, reason: error instanceof Error ? error.message : String(error) })
  })

/** names matched by each selector; exact names that match nothing are returned apart */
const select = (
  selectors: ReadonlyArray<string>,
  names: ReadonlyArray<string>
): Either.Either<
  {
    readonly matched: ReadonlySet<string>
    readonly missing: ReadonlyArray<string>
    readonly idle: ReadonlyArray<string>
  },
  InvalidResourcePattern
> =>
  Either.gen(function* () {
    const matched = new Set<string>()
    const missing: Array<string> = []
    const idle: Array<string> = []
    for (const selector of selectors) {
      if (isPattern(selector)) {
        const regex = yield* compile(selector)
        const hits = names.filter((name) => regex.test(name))
        if (hits.length === 0) idle.push(selector)
        for (const hit of hits) matched.add(hit)
      } else if (names.includes(selector)) {
        matched.add(selector)
      } else {
        missing.push(selector)
      }
    }
    return { matched, missing, idle }
  })

const defaultTable = (_source: string, resource: string): string => normalizeIdentifier(resource)

/**
 * The tables of resource definitions, for {@link Selection.tableOf} when a resource writes a table
 * not named after itself (`Resource.make({ name, tableName })`).
 *
 * @example
 * ```ts
 * Drop.plan(state, { resources: ["players_games"], tableOf: Drop.tablesOf([playersGames]) })
 * ```
 *
 * @since 0.1.0
 */
export const tablesOf = (
  resources: ReadonlyArray<Resource<unknown, unknown>>
): ((source: string, resource: string) => string) => {
  const tables = new Map(resources.map((r) => [r.name, normalizeIdentifier(r.tableName)]))
  return (source, resource) => tables.get(resource) ?? defaultTable(source, resource)
}

/**
 * Plans a drop on a state: which resource slots and tables go, which state locations are reset,
 * and the resulting state. Pure: nothing is read or written.
 *
 * @example
 * ```ts
 * const plan = yield* Drop.plan(state, { resources: ["re:^players"], statePaths: ["$.last_seen"] })
 * plan.tables     // ["players_games", "players_profiles"]
 * plan.statePaths // [{ source: "chess", path: "last_seen" }]
 * ```
 *
 * @since 0.1.0
 */
export const plan = (
  state: PipelineState.PipelineState,
  selection: Selection
): Either.Either<
  DropPlan,
  | UnknownResource
  | UnknownSource
  | InvalidResourcePattern
  | StatePath.InvalidStatePath
  | EmptySelection
  | SharedTable
> =>
  Either.gen(function* () {
    const dropAll = selection.dropAll === true
    const resourceSelectors = selection.resources ?? []
    const pathTexts = selection.statePaths ?? []
    if (!dropAll && resourceSelectors.length === 0 && pathTexts.length === 0) {
      return yield* Either.left(new EmptySelection())
    }
    const paths: Array<StatePath.StatePath> = []
    for (const text of pathTexts) paths.push(yield* StatePath.parse(text))

    const schemas = selection.schemas ?? new Map<string, StoredSchema.StoredSchema>()
    const allSources = [...new Set([...Object.keys(state.sources), ...schemas.keys()])]
    let sources = allSources
    if (selection.sources !== undefined && selection.sources.length > 0) {
      const picked = yield* select(selection.sources, allSources)
      if (picked.missing.length > 0) {
        return yield* Either.left(new UnknownSource({ names: picked.missing, known: allSources }))
      }
      sources = allSources.filter((s) => picked.matched.has(s))
    }
    const warnings: Array<string> = []
    const tableOf = selection.tableOf ?? defaultTable
    const hasSlot = (source: string, resource: string) =>
      Object.hasOwn(PipelineState.getResourceSlots(state, source), resource)
    // a source's resources: those with state, and those the stored schema knows (tables without state)
    const resourcesOf = (source: string): ReadonlyArray<string> => {
      const schema = schemas.get(source)
      return [
        ...new Set([
          ...Object.keys(PipelineState.getResourceSlots(state, source)),
          ...(schema === undefined ? [] : StoredSchema.resources(schema))
        ])
      ]
    }
    const tablesFor = (source: string, resource: string): ReadonlyArray<string> => {
      const schema = schemas.get(source)
      const known = schema === undefined ? [] : StoredSchema.tablesOf(schema, resource)
      return known.length > 0 ? known : [tableOf(source, resource)]
    }

    // resources: every (source, resource) pair among the chosen sources
    const pairs = sources.flatMap((source) => resourcesOf(source).map((resource) => ({ source, resource })))
    const names = [...new Set(pairs.map((p) => p.resource))]
    let chosen = pairs
    if (!dropAll) {
      const picked = yield* select(resourceSelectors, names)
      if (picked.missing.length > 0) {
        return yield* Either.left(
          new UnknownResource({ names: picked.missing, known: pairs.map((p) => `${p.source}.${p.resource}`) })
        )
      }
      for (const idle of picked.idle) warnings.push(`${idle} matched no resource`)
      chosen = pairs.filter((p) => picked.matched.has(p.resource))
    }

    const stateOnly = selection.stateOnly === true
    const keptReserved = new Set<string>()
    const schemaTables = new Map<string, Array<string>>()
    const dropped: Array<DroppedResource> = chosen.map(({ source, resource }) => {
      const hasState = hasSlot(source, resource)
      if (stateOnly) return { source, resource, tables: [], hasState }
      const tables: Array<string> = []
      const schema = schemas.get(source)
      if (
        schema !== undefined &&
        StoredSchema.tablesOf(schema, resource).length === 0 &&
        schema.tables[tableOf(source, resource)] === undefined
      ) {
        warnings.push(
          `the stored schema of ${source} names no table of ${source}.${resource}: if it wrote a table named otherwise (tableName), that table and its rows stay`
        )
      }
      for (const table of tablesFor(source, resource)) {
        if (table.startsWith("_dlt")) keptReserved.add(table)
        else tables.push(table)
      }
      schemaTables.set(source, [...(schemaTables.get(source) ?? []), ...tables])
      return { source, resource, tables, hasState }
    })
    const tables = [...new Set(dropped.flatMap((d) => d.tables))].sort()

    // a table also written by a resource that stays would lose that resource's rows while it keeps
    // its state: refused, nothing changes
    const droppedKeys = new Set(chosen.map((p) => `${p.source}\u0000${p.resource}`))
    const others = new Map<string, Array<{ readonly source: string; readonly resource: string }>>()
    for (const { source, resource } of allSources.flatMap((s) =>
      resourcesOf(s).map((r) => ({ source: s, resource: r }))
    )) {
      if (droppedKeys.has(`${source}\u0000${resource}`)) continue
      for (const table of tablesFor(source, resource)) {
        if (tables.includes(table)) others.set(table, [...(others.get(table) ?? []), { source, resource }])
      }
    }
    if (others.size > 0) {
      const conflicts = [...others].map(([table, stays]) => ({
        table,
        selected: dropped.filter((d) => d.tables.includes(table)).map((d) => `${d.source}.${d.resource}`),
        others: stays.map((o) => `${o.source}.${o.resource}`)
      }))
      const resources = [
        ...new Set([
          ...dropped.map((d) => d.resource),
          ...[...others.values()].flat().map((o) => o.resource)
        ])
      ]
      return yield* Either.left(new SharedTable({ conflicts, resources }))
    }

    let next = state
    for (const { source, resource } of chosen) {
      if (hasSlot(source, resource)) next = PipelineState.withoutResourceSlot(next, source, resource)
    }

    const wiped: Array<string> = []
    const reset: Array<ResetPath> = []
    if (dropAll) {
      wiped.push(...sources)
      // fromEntries defines own properties, so a source named `__proto__` stays a source
      next = {
        ...next,
        sources: Object.fromEntries(Object.entries(next.sources).filter(([s]) => !sources.includes(s)))
      }
    } else if (paths.length > 0) {
      for (const source of sources) {
        const slot = PipelineState.getSourceSlot(next, source)
        const { result, removed } = StatePath.remove(paths, slot, { exclude: ["resources"] })
        if (removed.length === 0) continue
        for (const path of removed) reset.push({ source, path })
        // `remove` keeps the values it did not touch, so the result is still a slot
        next = PipelineState.withSourceSlot(next, source, result as PipelineState.Slot)
      }
      if (reset.length === 0) warnings.push(`no state path matched: ${pathTexts.join(", ")}`)
    }
    if (dropAll && pathTexts.length > 0) warnings.push("--state-paths is superseded by --drop-all")

    return {
      resources: dropped,
      tables,
      schemaTables,
      keptReservedTables: [...keptReserved].sort(),
      sources: wiped,
      statePaths: reset,
      warnings,
      state: next,
      isEmpty: dropped.length === 0 && wiped.length === 0 && reset.length === 0
    } satisfies DropPlan
  })

// ---------------------------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------------------------

/**
 * What a drop is about to do, for a confirmation.
 *
 * @since 0.1.0
 */
export interface DropPreview {
  readonly plan: DropPlan
  readonly pipelineName: string
  readonly dataset: string
  /** where the destination keeps the dataset (never holds a secret) */
  readonly location: string
  /** the tables of the plan that exist in the destination */
  readonly presentTables: ReadonlyArray<string>
  /** the state version the drop starts from */
  readonly fromVersion: number
  /** the state version the drop commits */
  readonly toVersion: number
}

/**
 * How a drop ended.
 *
 * @since 0.1.0
 */
export type DropOutcome =
  | {
      readonly _tag: "Dropped"
      readonly preview: DropPreview
      readonly version: number
      readonly versionHash: string
      readonly loadId: string
    }
  /** the selection matched nothing that exists */
  | { readonly _tag: "NothingToDrop"; readonly preview: DropPreview }
  | { readonly _tag: "DryRun"; readonly preview: DropPreview }
  | { readonly _tag: "Cancelled"; readonly preview: DropPreview }

/**
 * @since 0.1.0
 */
export interface ApplyOptions<E, R> extends Selection {
  /** plan and preview, change nothing */
  readonly dryRun?: boolean | undefined
  /** asked before committing, while the lock is held; `false` cancels */
  readonly confirm?: ((preview: DropPreview) => Effect.Effect<boolean, E, R>) | undefined
}

/**
 * Drops what `options` selects: under the working-dir lock, starts from the local state or the
 * destination's newest (the rules of a run's restore), plans, asks `confirm`, then commits the new
 * state version and the table drops in ONE transaction (a load of its own; it fails with
 * `StateConflict`, writing nothing, if another run committed meanwhile) and writes the state
 * locally.
 *
 * @example
 * ```ts
 * const outcome = yield* Drop.apply({ dropAll: true, confirm: (p) => Console.log(p.plan.tables).pipe(Effect.as(true)) })
 * ```
 *
 * @since 0.1.0
 */
export const apply = <E = never, R = never>(
  options: ApplyOptions<E, R>
): Effect.Effect<
  DropOutcome,
  | E
  | UnknownResource
  | UnknownSource
  | InvalidResourcePattern
  | StatePath.InvalidStatePath
  | EmptySelection
  | SharedTable
  | DestinationError
  | StateConflict
  | Session.OpenError
  | Session.CommitError,
  R | Pipeline | Destination
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const session = yield* Session.open({ restore: true })
      const { config, destination, datasetTarget } = session
      // the sources' stored schemas: resources without state are found through them
      const names = [...new Set([...(session.state.schema_names ?? []), ...Object.keys(session.state.sources)])]
      const schemas = new Map<string, StoredSchema.StoredSchema>()
      for (const name of names) {
        const schema = yield* Schemas.newest(destination, datasetTarget, name)
        if (Option.isSome(schema)) schemas.set(name, schema.value)
      }
      const dropPlan = yield* plan(session.state, { ...options, schemas: options.schemas ?? schemas })
      const present: ReadonlyMap<string, unknown> =
        dropPlan.tables.length === 0 ? new Map() : yield* destination.describeTables(datasetTarget, dropPlan.tables)
      const next = yield* StateVersion.next(dropPlan.state, null)
      const preview: DropPreview = {
        plan: dropPlan,
        pipelineName: config.name,
        dataset: config.dataset,
        location: destination.location(datasetTarget),
        presentTables: dropPlan.tables.filter((t) => present.has(t)),
        fromVersion: session.state._state_version,
        toVersion: next.state._state_version
      }
      if (dropPlan.isEmpty) return { _tag: "NothingToDrop", preview } as const
      if (options.dryRun === true) return { _tag: "DryRun", preview } as const
      if (options.confirm !== undefined && !(yield* options.confirm(preview))) {
        return { _tag: "Cancelled", preview } as const
      }
      const committed = yield* session.commit({
        draft: dropPlan.state,
        schemaName: dropPlan.state.default_schema_name ?? Object.keys(session.state.sources)[0] ?? config.name,
        dropTables: dropPlan.tables,
        // each source's stored schema loses the dropped tables, in the same transaction
        schemas: [...dropPlan.schemaTables]
          .filter(([name, tables]) => tables.length > 0 && (options.schemas ?? schemas).has(name))
          .map(([name, tables]) => ({ name, tables: [], dropTables: tables }))
      })
      return {
        _tag: "Dropped",
        preview,
        version: committed.state._state_version,
        versionHash: committed.state._version_hash ?? "",
        loadId: committed.loadId ?? ""
      } as const
    })
  ).pipe(Effect.withSpan("pipestate.drop"))
