/**
 * Which state a run starts from, the local file's or the destination's, and `sync`: drop the local
 * state and restore it from the destination.
 *
 * The rules (dlt's, DESIGN.md):
 * - no local state and a state in the destination: the destination's becomes the local state;
 * - both: the destination wins when its version is >= the local one and the hashes differ (a crash
 *   after the commit, before the local write);
 * - a local state that was committed once, but no state in the destination: the dataset was
 *   dropped, so the pipeline starts over (first run, version 0);
 * - `restoreFromDestination: false`: nothing is read from the destination.
 *
 * @since 0.1.0
 */
import { Effect, Either, Option } from "effect"
import type {
  DatasetTarget,
  DestinationError,
  DestinationShape,
  Expectation,
  StoredState
} from "../destination/Destination.js"
import * as PipelineState from "../state/PipelineState.js"
import * as StateBlob from "../state/StateBlob.js"
import type { CorruptStateFile, WorkingDir, WorkingDirError } from "./WorkingDir.js"

/**
 * Why the run starts from the state it starts from.
 *
 * @since 0.1.0
 */
export type Origin = "local" | "destination" | "new" | "reset-dataset-dropped"

/**
 * @since 0.1.0
 */
export interface Opened {
  readonly state: PipelineState.PipelineState
  readonly origin: Origin
  /** what the commit must find as the destination's newest state */
  readonly expected: Expectation
  /** the newest load id seen in the destination, so a new load id sorts after it */
  readonly newestLoadId: Option.Option<string>
}

/**
 * @since 0.1.0
 */
export interface OpenOptions {
  readonly pipelineName: string
  readonly target: DatasetTarget
  readonly restoreFromDestination: boolean
  /** start from an empty state whatever the local file holds (dev mode) */
  readonly ignoreLocal: boolean
}

/**
 * Decodes a stored state row, checking it belongs to the pipeline.
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

const toExpected = (remote: Option.Option<StoredState>): Expectation => ({
  _tag: "Newest",
  newest: Option.map(remote, (r) => ({ version: r.version, hash: r.versionHash }))
})

/**
 * Decides the state a run starts from, and writes it locally when it came from the destination.
 *
 * @since 0.1.0
 */
export const open = (
  workingDir: WorkingDir,
  destination: DestinationShape,
  options: OpenOptions
): Effect.Effect<Opened, DestinationError | StateBlob.InvalidStateBlob | CorruptStateFile | WorkingDirError> =>
  Effect.gen(function* () {
    const fresh = PipelineState.empty({ pipelineName: options.pipelineName, datasetName: options.target.dataset })
    const local = options.ignoreLocal ? Option.none() : yield* workingDir.readState
    if (!options.restoreFromDestination) {
      return {
        state: Option.getOrElse(local, () => fresh),
        origin: Option.isSome(local) ? "local" : "new",
        expected: { _tag: "Unchecked" },
        newestLoadId: Option.none()
      } satisfies Opened
    }
    const remote = yield* destination.newestState(options.target, options.pipelineName)
    const expected = toExpected(remote)
    const newestLoadId = Option.map(remote, (r) => r.loadId)
    if (Option.isSome(remote)) {
      const restore =
        Option.isNone(local) ||
        (remote.value.version >= local.value._state_version && remote.value.versionHash !== local.value._version_hash)
      if (restore) {
        // decoded only when it wins: the blob can be large, and most runs start from a current local file
        const remoteState = yield* decodeStored(remote.value, options.pipelineName)
        yield* workingDir.writeState(remoteState)
        return { state: remoteState, origin: "destination", expected, newestLoadId } satisfies Opened
      }
      return { state: local.value, origin: "local", expected, newestLoadId } satisfies Opened
    }
    if (Option.isSome(local) && !local.value._local.first_run) {
      // this pipeline committed into the dataset before, and the dataset no longer holds its state
      return { state: fresh, origin: "reset-dataset-dropped", expected, newestLoadId } satisfies Opened
    }
    return {
      state: Option.getOrElse(local, () => fresh),
      origin: Option.isSome(local) ? "local" : "new",
      expected,
      newestLoadId
    } satisfies Opened
  })

/**
 * The outcome of `sync`.
 *
 * @since 0.1.0
 */
export type SyncResult =
  | {
      readonly _tag: "Restored"
      readonly version: number
      readonly versionHash: string | null
      readonly loadId: string
    }
  | { readonly _tag: "NothingInDestination" }

/**
 * Drops the local state and restores it from the destination (dlt's `pipeline sync`). When the
 * destination holds no state for the pipeline, the working dir is left clean.
 *
 * @since 0.1.0
 */
export const sync = (
  workingDir: WorkingDir,
  destination: DestinationShape,
  options: { readonly pipelineName: string; readonly target: DatasetTarget }
): Effect.Effect<SyncResult, DestinationError | StateBlob.InvalidStateBlob | WorkingDirError> =>
  Effect.gen(function* () {
    // read first: a destination that cannot be reached must not cost the local state
    const remote = yield* destination.newestState(options.target, options.pipelineName)
    yield* workingDir.deleteState
    if (Option.isNone(remote)) return { _tag: "NothingInDestination" } as const
    const state = yield* decodeStored(remote.value, options.pipelineName)
    yield* workingDir.writeState(state)
    return {
      _tag: "Restored",
      version: remote.value.version,
      versionHash: remote.value.versionHash,
      loadId: remote.value.loadId
    } as const
  })
