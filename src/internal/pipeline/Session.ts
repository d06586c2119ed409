/**
 * The one door for every state change (dlt's `Pipeline.managed_state`). Every verb that reads or
 * changes a pipeline's state — run, drop, restore, sync, currentState — opens a scoped session:
 *
 * ```
 * open    = lock the working dir → read the local state → read the destination's newest state row
 *           → StateSync.decide (which state wins, and why) → the base state
 * commit  = StateVersion.next (the one bump rule; the typed JSON encoded once for hash and blob)
 *           → the state row built once → Commit.apply (one transaction: optimistic check, tables,
 *           rows, load row, state row, retention) → persist state.json atomically
 * ```
 *
 * The local state records the target it was committed to (destination, location, dataset), so a
 * state is never applied to another target. The lock is released when the session's scope closes.
 *
 * @example
 * ```ts
 * const summary = Effect.scoped(
 *   Effect.gen(function* () {
 *     const session = yield* Session.open()
 *     const draft = PipelineState.withSourceSlot(session.state, "shop", { last: 3 })
 *     return yield* session.commit({ draft, schemaName: "shop" })
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Config, Effect, Either, Option, Ref, Schema, type Scope } from "effect"
import {
  type DatasetTarget,
  Destination,
  type DestinationError,
  type DestinationShape,
  type Stage,
  type StateConflict,
  type StateRow,
  type StateRowInfo
} from "../../destination/Destination.js"
import type { TableSchema } from "../destination/TableSchema.js"
import * as PipelineState from "../state/PipelineState.js"
import * as StoredSchema from "../schema/StoredSchema.js"
import * as StateBlob from "../state/StateBlob.js"
import * as StateRebase from "../state/StateRebase.js"
import * as StateValue from "../../state/StateValue.js"
import * as StateVersion from "../state/StateVersion.js"
import * as Commit from "./Commit.js"
import { Ids } from "./Ids.js"
import { Pipeline, type ResolvedConfig } from "../../pipeline/PipelineConfig.js"
import * as StateSync from "./StateSync.js"
import * as WorkingDir from "./WorkingDir.js"
import * as Shell from "../Shell.js"

/**
 * @since 0.1.0
 */
export interface OpenOptions {
  /** read the destination's newest state (default: the pipeline's `restoreFromDestination`) */
  readonly restore?: boolean
  /** treat a damaged local state file as absent instead of failing (`sync`, which repairs it) */
  readonly ignoreCorruptLocal?: boolean
}

/**
 * A change to commit: the verb's draft state, and for runs the staged rows and their tables.
 *
 * @since 0.1.0
 */
export interface Change {
  /** the state after the verb's work; its version and hash are those of the session's base */
  readonly draft: PipelineState.PipelineState
  /** the source whose schema the load belongs to (dlt's `schema_name`) */
  readonly schemaName: string
  /** a load id allocated before the commit (rows carry it in `_dlt_load_id`); default: a new one */
  readonly loadId?: string
  readonly stage?: Stage
  readonly tables?: ReadonlyArray<TableSchema>
  readonly dropTables?: ReadonlyArray<string>
  /** when the draft's data was extracted (`_local._last_extracted_at`), for runs */
  readonly extractedAt?: Date
  /** resource slots this change reset (`replace` resources): changed even when equal */
  readonly resets?: ReadonlyArray<StateRebase.ResourceRef>
  /** how the change alters the sources' stored schemas (tables written, tables dropped) */
  readonly schemas?: ReadonlyArray<Commit.SchemaChange>
  /**
   * an orchestrated group's record (`_pipestate_group_runs`), committed in the same transaction;
   * `summary` gives its JSON text from the committed load id and state. A change with a record
   * always commits (a load row even when nothing else changed).
   */
  readonly groupRun?: {
    readonly runId: string
    readonly group: string
    readonly summary: (committed: {
      readonly loadId: string
      readonly state: PipelineState.PipelineState
      readonly stateChanged: boolean
    }) => string
  }
  /** the run this load belongs to (runs with checkpoints, see `Checkpoint`) */
  readonly run?: Commit.CommitRequest<unknown, unknown>["run"]
}

/**
 * What a commit did.
 *
 * @since 0.1.0
 */
export interface Committed {
  /** `null` when there was nothing to commit (no table touched, state unchanged) */
  readonly loadId: string | null
  /** the state now in the working dir */
  readonly state: PipelineState.PipelineState
  /** the state's hash differs from the one committed before */
  readonly stateChanged: boolean
  /** the stored schemas the commit left as the newest (also written to the working dir) */
  readonly schemas: ReadonlyArray<StoredSchema.StoredSchema>
}

/**
 * An open session: the base state and how to commit a change on it.
 *
 * @since 0.1.0
 */
export interface Session {
  readonly config: ResolvedConfig
  readonly destination: DestinationShape
  readonly workingDir: WorkingDir.WorkingDir
  readonly datasetTarget: DatasetTarget
  readonly target: StateSync.Target
  readonly decision: StateSync.Decision
  /** the CLI flags that point a `pipestate pipeline <name> …` command at this pipeline (see `locationFlags`) */
  readonly locationFlags: ReadonlyArray<string>
  /** the state the change starts from */
  readonly state: PipelineState.PipelineState
  /** the destination's newest state row when the session opened (none when not read or absent) */
  readonly remote: Option.Option<StateRowInfo>
  /** a new load id, after every load id this session has seen */
  readonly newLoadId: Effect.Effect<string>
  /** a new `_dlt_id` */
  readonly rowId: () => string
  /** the destination's newest state when the session opened, decoded (`sync`); none when it was not read */
  readonly remoteState: Effect.Effect<
    Option.Option<PipelineState.PipelineState>,
    DestinationError | StateBlob.InvalidStateBlob
  >
  readonly commit: (change: Change) => Effect.Effect<Committed, CommitError>
  /** writes a state to the working dir only, recording this session's target */
  readonly persist: (state: PipelineState.PipelineState) => Effect.Effect<void, WorkingDirError>
}

type WorkingDirError = WorkingDir.WorkingDirError

/**
 * The destination holds no state for the pipeline, so there is nothing to restore from.
 *
 * @since 0.1.0
 */
export class NoStateInDestination extends Schema.TaggedError<NoStateInDestination>()("NoStateInDestination", {
  pipelineName: Schema.String,
  dataset: Schema.String,
  location: Schema.String
}) {
  override get message(): string {
    return (
      `pipeline ${this.pipelineName}: dataset ${this.dataset} (${this.location}) holds no state of this pipeline; nothing was changed. ` +
      "Check the destination and dataset (--destination, --url, --sqlite-path, --dataset), or run the pipeline first."
    )
  }
}

/**
 * Errors of {@link Session.commit}.
 *
 * @since 0.1.0
 */
export type CommitError =
  | DestinationError
  | StateConflict
  | StateValue.NonSerializableStateValue
  | StateBlob.InvalidStateBlob
  | StoredSchema.InvalidStoredSchema
  | WorkingDir.WorkingDirError

/**
 * Errors of {@link open}.
 *
 * @since 0.1.0
 */
export type OpenError =
  | WorkingDir.PipelineLocked
  | WorkingDir.WorkingDirError
  | WorkingDir.CorruptStateFile
  | DestinationError
  | StateBlob.InvalidStateBlob

/**
 * The command that repairs a corrupt local state of this pipeline, as printed.
 *
 * @since 0.1.0
 */
export const syncCommand = (
  config: ResolvedConfig,
  destination: DestinationShape,
  target: DatasetTarget,
  options: { readonly postgresUrlInEnv?: boolean } = {}
): string => `pipestate pipeline ${shellQuote(config.name)} sync ${locationFlags(config, destination, target, options).join(" ")} --yes`

/**
 * The CLI flags that point a `pipestate pipeline <name> …` command at this pipeline's working dir,
 * destination and dataset, shell-quoted: `--pipelines-dir`, and for the built-in destinations
 * `--destination` with `--sqlite-path` or `--url` (the server's URL without its password, given when
 * the shell has no `PIPESTATE_POSTGRES_URL` for the CLI to find, which would take precedence), and
 * `--dataset`.
 *
 * @since 0.3.0
 */
export const locationFlags = (
  config: ResolvedConfig,
  destination: DestinationShape,
  target: DatasetTarget,
  options: { readonly postgresUrlInEnv?: boolean } = {}
): ReadonlyArray<string> => {
  const flags = [`--pipelines-dir ${shellQuote(config.pipelinesDir)}`]
  if (destination.name === "sqlite" || destination.name === "postgres") {
    flags.push(`--destination ${destination.name}`)
    if (destination.name === "sqlite") flags.push(`--sqlite-path ${shellQuote(destination.identity(target))}`)
    if (destination.name === "postgres" && options.postgresUrlInEnv !== true) {
      flags.push(`--url ${shellQuote(destination.identity(target))}`)
    }
  }
  flags.push(`--dataset ${shellQuote(target.dataset)}`)
  return flags
}

/**
 * A word as a POSIX shell reads it back (see `Shell.shellQuote`).
 *
 * @since 0.1.0
 */
export const shellQuote = Shell.shellQuote

/**
 * Opens a session on the pipeline in context: takes the working-dir lock (held until the scope
 * closes), reads the local state and the destination's newest state row, and decides the base
 * state. Writes nothing.
 *
 * @since 0.1.0
 */
export const open = (
  options: OpenOptions = {}
): Effect.Effect<Session, OpenError, Scope.Scope | Pipeline | Destination> =>
  Effect.gen(function* () {
    const { config, workingDir } = yield* Pipeline
    const destination = yield* Destination
    const ids = yield* Ids
    const datasetTarget: DatasetTarget = { dataset: config.dataset, pipelineDir: workingDir.datasetDir }
    const target: StateSync.Target = {
      destinationType: destination.type,
      destinationName: destination.name,
      location: destination.identity(datasetTarget),
      dataset: config.dataset
    }
    const restore = options.restore ?? config.restoreFromDestination
    const postgresUrlInEnv = Option.isSome(
      yield* Config.option(Config.nonEmptyString("PIPESTATE_POSTGRES_URL")).pipe(
        Effect.orElseSucceed(() => Option.none<string>())
      )
    )
    yield* workingDir.lock
    const found = yield* workingDir.readState.pipe(
      Effect.catchTag("CorruptStateFile", (error) =>
        options.ignoreCorruptLocal === true
          ? Effect.succeed(Option.none<PipelineState.PipelineState>())
          : Effect.fail(
              new WorkingDir.CorruptStateFile({
                path: error.path,
                reason: error.reason,
                pipelineName: config.name,
                command: syncCommand(config, destination, datasetTarget, { postgresUrlInEnv })
              })
            )
      )
    )
    // the state.json of another target stays with the working dir: kept aside at the first write, and
    // the state kept for this target (if the pipeline was here before) is this target's local state
    const leaving = Option.filter(found, (state) => !StateSync.belongsTo(state, target))
    const kept = Option.isSome(leaving)
      ? Option.filter(yield* workingDir.readStash(StateSync.keyOf(target)), (state) =>
          StateSync.belongsTo(state, target)
        )
      : Option.none<PipelineState.PipelineState>()
    if (Option.isSome(kept) && Option.isSome(leaving)) {
      yield* Effect.logInfo(
        `pipeline ${config.name}: the local state belongs to ${StateSync.describeTarget(StateSync.targetOf(leaving.value))}; using the state kept for ${StateSync.describeTarget(target)}`
      )
    }
    const local = Option.isSome(kept) ? kept : found
    const remote = restore
      ? Option.fromNullable((yield* destination.stateRows(datasetTarget, config.name, 1))[0])
      : Option.none<StateRowInfo>()
    const decision = StateSync.decide({ local, remote, target, restore })
    const readRemote = (row: StateRowInfo) =>
      Effect.flatMap(destination.readState(datasetTarget, config.name, row.loadId), (stored) =>
        Option.match(stored, {
          onNone: () => Effect.succeed(Option.none<PipelineState.PipelineState>()),
          onSome: (s) => Effect.map(StateSync.decodeStored(s, config.name), Option.some)
        })
      )
    const fresh = PipelineState.empty({ pipelineName: config.name, datasetName: config.dataset })
    const state: PipelineState.PipelineState =
      decision.from === "local"
        ? Option.getOrElse(local, () => fresh)
        : decision.from === "remote" && Option.isSome(remote)
          ? Option.getOrElse(yield* readRemote(remote.value), () => fresh)
          : fresh
    // the hash the destination holds for the base state; null when it holds none
    const committedHash =
      decision.expected._tag === "Newest"
        ? Option.getOrNull(Option.map(decision.expected.newest, (n) => n.hash))
        : state._local.first_run
          ? null
          : (state._version_hash ?? null)

    // what the next commit expects: advanced by every commit of this session (checkpoints)
    const committed = yield* Ref.make({
      state,
      expected: decision.expected,
      committedHash,
      newestLoadId: Option.map(remote, (r) => r.loadId)
    })
    const newLoadId = Effect.flatMap(Ref.get(committed), (c) => ids.loadId(c.newestLoadId))

    const record = (doc: PipelineState.PipelineState, local: Partial<PipelineState.LocalState>) =>
      PipelineState.withLocal(doc, { ...local, location: target.location })

    const stashed = yield* Ref.make(false)
    /** writes state.json, first keeping aside the state of the target this pipeline leaves */
    const write = (doc: PipelineState.PipelineState) =>
      Effect.gen(function* () {
        if (Option.isSome(leaving) && !(yield* Ref.getAndSet(stashed, true))) {
          yield* workingDir.writeStash(StateSync.keyOf(StateSync.targetOf(leaving.value)), leaving.value)
        }
        yield* workingDir.writeState(doc)
      }).pipe(Effect.withSpan("pipestate.persist", { attributes: spanOf(config) }))

    const persist = (doc: PipelineState.PipelineState) => write(record(doc, {}))

    const withMetadata = (doc: PipelineState.PipelineState, schemaName: string): PipelineState.PipelineState => ({
      ...doc,
      pipeline_name: config.name,
      dataset_name: config.dataset,
      default_schema_name: doc.default_schema_name ?? schemaName,
      schema_names: [...new Set([...(doc.schema_names ?? []), schemaName])],
      // an unchanged state keeps what it says (dlt writes a null name where the type names it),
      // so committing back a state dlt wrote needs no new version
      destination_type: destination.type,
      destination_name:
        doc.destination_type === destination.type && doc.destination_name !== undefined
          ? doc.destination_name
          : destination.type.split(".").pop() === destination.name
            ? null
            : destination.name
    })

    const commit = (change: Change) =>
      Effect.gen(function* () {
        const current = yield* Ref.get(committed)
        const base = current.state
        const next = yield* StateVersion.next(withMetadata(change.draft, change.schemaName), current.committedHash)
        const tables = change.tables ?? []
        const dropTables = change.dropTables ?? []
        const groupRun = change.groupRun
        const due = tables.length > 0 || dropTables.length > 0 || next.changed || groupRun !== undefined
        const local = (state: PipelineState.PipelineState, firstRun: boolean) =>
          record(state, {
            first_run: firstRun,
            ...(change.extractedAt === undefined ? {} : { _last_extracted_at: change.extractedAt })
          })
        if (!due) {
          const persisted = local(next.state, base._local.first_run)
          yield* Ref.update(committed, (c) => ({ ...c, state: persisted }))
          yield* write(persisted)
          return { loadId: null, state: persisted, stateChanged: false, schemas: [] } satisfies Committed
        }
        const loadId = change.loadId ?? (yield* newLoadId)
        const now = new Date(yield* Clock.currentTimeMillis)
        const rowOf = (n: StateVersion.Next) =>
          Effect.gen(function* () {
            if (!n.changed) return Option.none<Omit<StateRow, "loadId">>()
            // the blob keeps the document's key order, as dlt writes it
            const blob = yield* StateBlob.encode(n.state)
            if (blob.length > config.stateSizeWarningBytes) {
              yield* Effect.logWarning(
                `pipeline ${config.name}: the encoded state is ${blob.length} bytes, past ${config.stateSizeWarningBytes}; largest slots: ${largestSlots(n.state)}. Keep large per-record data in the destination (PipelineContext.dataset), not in state.`
              )
            }
            return Option.some<Omit<StateRow, "loadId">>({
              version: n.state._state_version,
              engineVersion: n.state._state_engine_version,
              pipelineName: config.name,
              state: blob,
              createdAt: now,
              versionHash: n.hash,
              dltId: ids.rowId()
            })
          })
        const resolved = (n: StateVersion.Next, newest: StateRowInfo | undefined) =>
          Effect.map(rowOf(n), (row) => ({
            row,
            value: {
              next: n,
              newest: n.changed
                ? { version: n.state._state_version, hash: n.hash }
                : newest === undefined
                  ? null
                  : { version: newest.version, hash: newest.versionHash }
            }
          }))
        const applied = yield* Commit.apply(destination, datasetTarget, {
          pipelineName: config.name,
          load: { loadId, schemaName: change.schemaName, status: 0, insertedAt: now, schemaVersionHash: null },
          stage: Option.fromNullable(change.stage),
          tables,
          dropTables,
          keepStateVersions: config.keepStateVersions,
          loadIdAfter: (after) => ids.loadId(Option.some(after)),
          schemas: change.schemas ?? [],
          ...(groupRun === undefined
            ? {}
            : {
                groupRun: (value: { readonly next: StateVersion.Next }, rowsLoadId: string) => ({
                  pipelineName: config.name,
                  runId: groupRun.runId,
                  group: groupRun.group,
                  loadId: rowsLoadId,
                  summary: groupRun.summary({
                    loadId: rowsLoadId,
                    state: value.next.state,
                    stateChanged: value.next.changed
                  }),
                  insertedAt: now
                })
              }),
          ...(change.run === undefined ? {} : { run: change.run }),
          state: {
            expected: current.expected,
            // without a check (restore off), a state that changed still goes above the newest row
            onExpected: (found) =>
              resolved(current.expected._tag === "Unchecked" ? StateVersion.above(next, found) : next, found),
            // another change committed since this one started: combine them when they touched
            // different resource slots and source-state keys (StateRebase), else a conflict
            onMoved: (found, read) =>
              Effect.gen(function* () {
                const moved = (paths?: ReadonlyArray<string>) =>
                  Commit.conflict(config.name, config.dataset, current.expected, found, paths)
                // the base must be exactly the state the change expected (no state: an empty one),
                // or what each side changed since is unknown
                const exact =
                  current.expected._tag === "Newest" &&
                  Option.match(current.expected.newest, {
                    onNone: () => Object.keys(base.sources).length === 0,
                    onSome: (newest) => newest.hash !== null && base._version_hash === newest.hash
                  })
                if (!exact) return yield* moved()
                const stored = yield* read
                if (Option.isNone(stored)) return yield* moved()
                const theirs = yield* StateSync.decodeStored(stored.value, config.name)
                const rebased = yield* StateRebase.rebase({
                  base,
                  remote: theirs,
                  draft: change.draft,
                  resets: change.resets ?? []
                }).pipe(Effect.catchTag("RebaseConflict", (error) => Effect.fail(moved(error.paths))))
                const merged = yield* StateVersion.next(
                  withMetadata(rebased.state, change.schemaName),
                  found.versionHash
                )
                return yield* resolved(merged, found)
              })
          }
        }).pipe(
          Effect.withSpan("pipestate.commit", {
            attributes: {
              ...spanOf(config),
              "pipestate.destination": destination.name,
              "pipestate.load_id": loadId,
              "pipestate.state_version": next.state._state_version,
              "pipestate.state_changed": next.changed,
              "pipestate.tables": tables.length
            }
          })
        )
        const { value: result, schemas } = applied
        const persisted = local(result.next.state, false)
        yield* Ref.set(committed, {
          state: persisted,
          expected:
            current.expected._tag === "Unchecked"
              ? current.expected
              : ({ _tag: "Newest", newest: Option.fromNullable(result.newest) } satisfies StateSync.Expectation),
          committedHash: result.newest?.hash ?? current.committedHash,
          newestLoadId: Option.some(loadId)
        })
        yield* write(persisted)
        // the working dir's copy of each schema follows the destination's newest version; a commit
        // that left a schema as it was rewrites the copy only when it differs (or is missing)
        const copies = schemaCopies(workingDir)
        yield* Effect.forEach(
          schemas,
          ({ schema, inserted }) =>
            Effect.gen(function* () {
              // the same document object as the copy this process last wrote or found: nothing to do
              if (!inserted && copies.get(schema.name) === schema) return
              const text = StoredSchema.toText(schema)
              if (!inserted) {
                const local = yield* workingDir.readSchema(schema.name)
                if (Option.isSome(local) && local.value === text) {
                  copies.set(schema.name, schema)
                  return
                }
              }
              yield* workingDir.writeSchema(schema.name, text)
              copies.set(schema.name, schema)
            }),
          { discard: true }
        )
        return {
          loadId,
          state: persisted,
          stateChanged: result.next.changed,
          schemas: schemas.map((s) => s.schema)
        } satisfies Committed
      })

    return {
      config,
      destination,
      workingDir,
      datasetTarget,
      target,
      decision,
      locationFlags: locationFlags(config, destination, datasetTarget, { postgresUrlInEnv }),
      state,
      remote,
      newLoadId,
      rowId: ids.rowId,
      remoteState: Option.match(remote, { onNone: () => Effect.succeed(Option.none()), onSome: readRemote }),
      commit,
      persist
    } satisfies Session
  }).pipe(Effect.withSpan("pipestate.restore"))

// per working dir: the stored schema each copy in it last matched (a stored schema that did not
// change is the same object, StoredSchema's memo by text): a commit that left it as it was reads
// and writes no file (a copy deleted behind a running process comes back with the schema's next
// version, or in the next process)
const schemaCopiesByDir = new WeakMap<WorkingDir.WorkingDir, Map<string, StoredSchema.StoredSchema>>()
const schemaCopies = (dir: WorkingDir.WorkingDir): Map<string, StoredSchema.StoredSchema> => {
  let copies = schemaCopiesByDir.get(dir)
  if (copies === undefined) {
    copies = new Map()
    schemaCopiesByDir.set(dir, copies)
  }
  return copies
}

const spanOf = (config: ResolvedConfig) => ({
  "pipestate.pipeline": config.name,
  "pipestate.dataset": config.dataset
})

const largestSlots = (state: PipelineState.PipelineState): string => {
  const sizes: Array<readonly [string, number]> = []
  const size = (value: unknown) => Either.getOrElse(StateValue.stringify(value), () => "").length
  for (const [source, slot] of Object.entries(state.sources)) {
    const { resources, ...own } = slot
    sizes.push([`sources.${source}`, size(own)])
    if (typeof resources === "object" && resources !== null && !Array.isArray(resources)) {
      for (const [resource, value] of Object.entries(resources)) {
        sizes.push([`sources.${source}.resources.${resource}`, size(value)])
      }
    }
  }
  return sizes
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([path, bytes]) => `${path} (${bytes} bytes)`)
    .join(", ")
}
