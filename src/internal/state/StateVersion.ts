/**
 * The ONE version rule of the state document, used by every verb that commits a state (run, drop,
 * restore, checkpoints): dlt's `bump_pipeline_state_version_if_modified`
 * (dlt/common/versioned_state.py). The first hash is set without bumping `_state_version`; a later
 * different hash bumps it by one; an equal hash leaves the version alone.
 *
 * @example
 * ```ts
 * import { Either } from "effect"
 * import { StateVersion } from "effect-pipestate/internal"
 *
 * const next = Either.getOrThrow(StateVersion.next(draft, committedHash))
 * next.state._state_version // base version + 1 when the content changed
 * next.changed              // the hash differs from the committed one: a state row is due
 * ```
 *
 * @since 0.1.0
 */
import { Either } from "effect"
import * as PipelineState from "./PipelineState.js"
import type { NonSerializableStateValue } from "../../state/StateValue.js"

/**
 * A state ready to commit.
 *
 * @since 0.1.0
 */
export interface Next {
  /** the document with its new `_state_version` and `_version_hash` */
  readonly state: PipelineState.PipelineState
  readonly hash: string
  /** the hash differs from the committed one: the commit must write a state row */
  readonly changed: boolean
}

/**
 * Applies the version rule to `draft` (whose `_state_version` and `_version_hash` are those of the
 * state it started from). `committedHash` is the hash the destination holds for that state, `null`
 * when it holds none (a first run, or a state never committed).
 *
 * @since 0.1.0
 */
export const next = (
  draft: PipelineState.PipelineState,
  committedHash: string | null
): Either.Either<Next, NonSerializableStateValue> =>
  Either.map(PipelineState.bumpVersion(draft), (state) => {
    const hash = state._version_hash ?? ""
    return { state, hash, changed: hash !== committedHash }
  })

/**
 * `draft` rebased on `base`: the content of `draft` with the version and hash of `base`, so that
 * {@link next} bumps from `base` (a restore makes an old version's content the newest; a commit
 * that merges another run's changes starts from that run's state).
 *
 * @since 0.1.0
 */
export const onto = (
  draft: PipelineState.PipelineState,
  base: PipelineState.PipelineState
): PipelineState.PipelineState => {
  const { _version_hash: _dropped, ...content } = draft
  return {
    ...content,
    _state_version: base._state_version,
    ...(base._version_hash === undefined ? {} : { _version_hash: base._version_hash }),
    _local: base._local
  }
}

/**
 * `next` with a version above `newest`'s when it changed: versions only grow in a dataset, even when
 * a change did not start from the newest state (state sync off, starting over).
 *
 * @since 0.1.0
 */
export const above = (next: Next, newest: { readonly version: number } | undefined): Next =>
  next.changed && newest !== undefined && next.state._state_version <= newest.version
    ? { ...next, state: { ...next.state, _state_version: newest.version + 1 } }
    : next
