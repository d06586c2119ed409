/**
 * Which state a change starts from — the local file's, the destination's, or a fresh one — and why.
 * {@link decide} is pure: the session reads the local file and the destination's newest state row,
 * and this module says which wins (dlt's rules, `dlt/pipeline/state_sync.py`, plus the target
 * binding pipestate adds):
 *
 * - a local state committed to ANOTHER target (destination type, location or dataset) is absent for
 *   this one: the run restores from this target, or starts fresh;
 * - no local state and a state in the destination: the destination's wins;
 * - both: the destination wins when its version is >= the local one and the hashes differ (a crash
 *   after the commit, before the local write);
 * - a local state that was committed once, but no state in the destination: the dataset was
 *   dropped, so the pipeline starts over (first run, version 0);
 * - `restoreFromDestination: false`: nothing is read from the destination.
 *
 * @example
 * ```ts
 * const decision = StateSync.decide({ local, remote, target, restore: true })
 * decision.origin // "destination"
 * ```
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Either, Option } from "effect"
import type { StateRowInfo, StoredState } from "../../destination/Destination.js"
import type * as PipelineState from "../state/PipelineState.js"
import * as StateBlob from "../state/StateBlob.js"

/**
 * Where a change commits: the destination, the place it keeps its data, and the dataset.
 *
 * @since 0.1.0
 */
export interface Target {
  /** dlt's `destination_type`, e.g. `dlt.destinations.postgres` */
  readonly destinationType: string
  /** dlt's `destination_name`, e.g. `sqlite` */
  readonly destinationName: string
  /** the destination's non-secret location identity (SQLite file or directory, postgres://user@host:port/db) */
  readonly location: string
  readonly dataset: string
}

/**
 * Why a run starts from the state it starts from.
 *
 * - `local`: the local state of this target;
 * - `destination`: restored from the destination (no local state, or the destination's is newer);
 * - `new`: nothing anywhere, a first run;
 * - `reset-dataset-dropped`: the local state was committed to this dataset, which no longer holds it;
 * - `target-changed-destination`: the local state belongs to another target; restored from this one;
 * - `target-changed-new`: the local state belongs to another target, and this one holds none.
 *
 * @since 0.1.0
 */
export type Origin =
  | "local"
  | "destination"
  | "new"
  | "reset-dataset-dropped"
  | "target-changed-destination"
  | "target-changed-new"

/**
 * What the commit must find as the destination's newest state. `Unchecked` skips the check (state
 * sync is off, so nothing was read).
 *
 * @since 0.1.0
 */
export type Expectation =
  | { readonly _tag: "Unchecked" }
  | {
      readonly _tag: "Newest"
      readonly newest: Option.Option<{ readonly version: number; readonly hash: string | null }>
    }

/**
 * The outcome of {@link decide}.
 *
 * @since 0.1.0
 */
export interface Decision {
  /** which state to start from; `remote` means: read and decode the destination's newest blob */
  readonly from: "local" | "remote" | "fresh"
  readonly origin: Origin
  readonly expected: Expectation
  /** the local state belongs to another target: which one, for the log line */
  readonly foreignTarget: Option.Option<string>
}

/**
 * The target the local state was committed to, as recorded in it (`destination_type`,
 * `destination_name`, `dataset_name` of the document and `_local.location`).
 *
 * @since 0.1.0
 */
export const targetOf = (state: PipelineState.PipelineState): Partial<Target> => {
  const location = state._local.location
  return {
    ...(typeof state.destination_type === "string" ? { destinationType: state.destination_type } : {}),
    ...(typeof state.destination_name === "string" ? { destinationName: state.destination_name } : {}),
    ...(typeof location === "string" ? { location } : {}),
    ...(typeof state.dataset_name === "string" ? { dataset: state.dataset_name } : {})
  }
}

/** destination types written by earlier pipestate versions, and the dlt types the drivers use now */
const LEGACY_TYPES: Readonly<Record<string, string>> = {
  "pipestate.destinations.sqlite": "dlt.destinations.sqlalchemy",
  "pipestate.destinations.postgres": "dlt.destinations.postgres"
}

/**
 * A destination type with earlier pipestate spellings mapped to today's.
 *
 * @since 0.1.0
 */
export const canonicalType = (type: string): string => LEGACY_TYPES[type] ?? type

/**
 * Which built-in destination a state was committed through: its `destination_name`, else the last
 * part of its `destination_type` (dlt writes `null` names); dlt's `sqlalchemy` is pipestate's SQLite.
 *
 * @example
 * ```ts
 * destinationKind({ ...state, destination_type: "dlt.destinations.postgres", destination_name: null }) // "postgres"
 * ```
 *
 * @since 0.1.0
 */
export const destinationKind = (doc: {
  readonly destination_name?: unknown
  readonly destination_type?: unknown
}): string | undefined => {
  if (typeof doc.destination_name === "string" && doc.destination_name !== "") return doc.destination_name
  if (typeof doc.destination_type !== "string") return undefined
  const last = canonicalType(doc.destination_type).split(".").pop()
  return last === "sqlalchemy" ? "sqlite" : last
}

/**
 * A target as one line: `sqlite:/home/me/.pipestate/pipelines/shop/shop_data.sqlite#shop_data`.
 *
 * @since 0.1.0
 */
export const describeTarget = (target: Partial<Target>): string =>
  `${target.destinationName ?? destinationKind({ destination_type: target.destinationType }) ?? "?"}:${target.location ?? "?"}#${target.dataset ?? "?"}`

/**
 * The name under which the working dir keeps the state of a target it left (see
 * `WorkingDir.readStash`): a hash of destination type, location and dataset.
 *
 * @since 0.1.0
 */
export const keyOf = (target: Partial<Target>): string =>
  createHash("sha256")
    .update(JSON.stringify([target.destinationType ?? null, target.location ?? null, target.dataset ?? null]))
    .digest("hex")
    .slice(0, 24)

/**
 * Whether a local state belongs to `target`. What the state does not record (a state written by an
 * older pipestate has no location; a state never committed has no destination) is not held
 * against it.
 *
 * @since 0.1.0
 */
export const belongsTo = (state: PipelineState.PipelineState, target: Target): boolean => {
  const recorded = targetOf(state)
  return (
    (recorded.dataset === undefined || recorded.dataset === target.dataset) &&
    (recorded.destinationType === undefined ||
      canonicalType(recorded.destinationType) === canonicalType(target.destinationType)) &&
    (recorded.destinationName === undefined || recorded.destinationName === target.destinationName) &&
    (recorded.location === undefined || recorded.location === target.location)
  )
}

/**
 * @since 0.1.0
 */
export interface DecideInput {
  readonly local: Option.Option<PipelineState.PipelineState>
  /** the destination's newest state row; none when it holds none or was not read */
  readonly remote: Option.Option<StateRowInfo>
  readonly target: Target
  /** whether the destination was read (`restoreFromDestination`) */
  readonly restore: boolean
}

/**
 * Decides which state a change starts from. Pure.
 *
 * @since 0.1.0
 */
export const decide = (input: DecideInput): Decision => {
  const foreign = Option.filter(input.local, (state) => !belongsTo(state, input.target))
  const foreignTarget = Option.map(foreign, (state) => describeTarget(targetOf(state)))
  const local = Option.filter(input.local, (state) => belongsTo(state, input.target))
  const moved = Option.isSome(foreign)
  if (!input.restore) {
    return {
      from: Option.isSome(local) ? "local" : "fresh",
      origin: Option.isSome(local) ? "local" : moved ? "target-changed-new" : "new",
      expected: { _tag: "Unchecked" },
      foreignTarget
    }
  }
  const expected: Expectation = {
    _tag: "Newest",
    newest: Option.map(input.remote, (r) => ({ version: r.version, hash: r.versionHash }))
  }
  if (Option.isSome(input.remote)) {
    const remote = input.remote.value
    if (Option.isNone(local)) {
      return { from: "remote", origin: moved ? "target-changed-destination" : "destination", expected, foreignTarget }
    }
    const wins = remote.version >= local.value._state_version && remote.versionHash !== local.value._version_hash
    return wins
      ? { from: "remote", origin: "destination", expected, foreignTarget }
      : { from: "local", origin: "local", expected, foreignTarget }
  }
  if (Option.isSome(local) && !local.value._local.first_run) {
    // this pipeline committed into the dataset before, and the dataset no longer holds its state
    return { from: "fresh", origin: "reset-dataset-dropped", expected, foreignTarget }
  }
  return {
    from: Option.isSome(local) ? "local" : "fresh",
    origin: Option.isSome(local) ? "local" : moved ? "target-changed-new" : "new",
    expected,
    foreignTarget
  }
}

/**
 * Decodes a stored state row, checking it belongs to the pipeline; the row's version wins over the
 * blob's (dlt reads it from the column).
 *
 * @since 0.1.0
 */
export const decodeStored = (
  stored: StoredState,
  pipelineName: string
): Either.Either<PipelineState.PipelineState, StateBlob.InvalidStateBlob> =>
  Either.map(StateBlob.decode(stored.state, { pipelineName }), (state) => ({
    ...state,
    _state_version: stored.version,
    _local: { ...state._local, first_run: false }
  }))
