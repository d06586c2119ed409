/**
 * Rebasing a run's state changes onto a state another run committed meanwhile: what lets the
 * parts of a decomposed source (`Source.decompose`) commit into one dataset at once instead of
 * one of them failing with a conflict.
 *
 * A run starts from the committed state `base` (v) and changes a `draft`; when it commits, the
 * destination holds `remote` (v'), committed by another run that also started from v. Both sides'
 * changes since v are compared unit by unit:
 *
 * - a resource slot, `sources.<s>.resources.<r>` (its whole value: a run that changes one key of a
 *   resource's state owns that resource's slot);
 * - a top-level key of a source's state, `sources.<s>.<key>` (every key but `resources`);
 * - a top-level key of the document other than `sources`, `_local`, `_state_version`,
 *   `_state_engine_version` and `_version_hash` (e.g. `schema_names`);
 * - `sources.<s>.resources` as a whole, only when some version holds a `resources` value that is
 *   not an object (then its entries are not slots).
 *
 * A unit is changed when its typed JSON (sorted keys, as the version hash sees it) differs, or it
 * appears or disappears: Decimal `1.50` → `1.5` is a change, the order of keys is not. When no
 * unit is changed by both sides, the result is `remote` with every unit this run changed set to
 * the draft's value (or removed). Otherwise it is a {@link RebaseConflict} naming every unit both
 * sides changed — also when both changed it to the same value (two runs that both moved a counter
 * from 1 to 2 lost an update).
 *
 * The slots around the units (`sources.<s>`, `sources.<s>.resources`) exist in the result when
 * something is left in them, when either side created them, or when both kept them: a slot one
 * side removes while the other side adds to it keeps the addition.
 *
 * The result keeps `remote`'s `_state_version`, `_state_engine_version` and `_version_hash` and
 * the draft's `_local`: `PipelineState.bumpVersion` then gives it version v'+1 and its hash, or
 * leaves it as it is when it equals `remote`'s content (this run changed nothing).
 *
 * Pure: no I/O; the commit calls it inside its transaction, under the lock that orders commits.
 *
 * @example
 * ```ts
 * const rebased = StateRebase.rebase({ base: start, remote: newest, draft, resets: [{ source: "shop", resource: "snapshot" }] })
 * // Right({ state, ours: ["sources.shop.resources.orders"], theirs: ["sources.shop.resources.customers"] })
 * // or Left(RebaseConflict { paths: ["sources.shop.last_sync"] })
 * ```
 *
 * @since 0.1.0
 */
import { Either, Schema } from "effect"
import type { PipelineState, Slot } from "./PipelineState.js"
import { type NonSerializableStateValue, stringifySorted } from "../../state/StateValue.js"

/**
 * A resource's slot, `sources.<source>.resources.<resource>`.
 *
 * @since 0.1.0
 */
export interface ResourceRef {
  readonly source: string
  readonly resource: string
}

/**
 * What {@link rebase} needs.
 *
 * @since 0.1.0
 */
export interface RebaseInput {
  /** the committed state this run started from (v) */
  readonly base: PipelineState
  /** the destination's newest committed state (v'), committed by another run since v */
  readonly remote: PipelineState
  /** this run's state: `base` with its changes */
  readonly draft: PipelineState
  /**
   * Resource slots this run reset (resources with `replace` write disposition: their table and
   * state start empty every run). Each counts as changed by this run even when its value is the
   * one of `base` (e.g. absent in both): the run replaced the table, so its state must win or
   * conflict, never silently keep the other run's state for a table this run replaced.
   */
  readonly resets?: ReadonlyArray<ResourceRef>
}

/**
 * A rebased state and the unit paths each side changed since `base`, sorted.
 *
 * @since 0.1.0
 */
export interface Rebased {
  /** `remote` with this run's changes; `remote`'s version and hash, the draft's `_local` */
  readonly state: PipelineState
  /** the units this run changed (resets included) */
  readonly ours: ReadonlyArray<string>
  /** the units the other run(s) changed */
  readonly theirs: ReadonlyArray<string>
}

/**
 * This run and another run both changed the same state units since the version this run started
 * from: the commit cannot merge them and writes nothing.
 *
 * @since 0.1.0
 */
export class RebaseConflict extends Schema.TaggedError<RebaseConflict>()("RebaseConflict", {
  pipelineName: Schema.String,
  /** the version this run started from */
  baseVersion: Schema.Number,
  /** the version the destination holds now */
  remoteVersion: Schema.Number,
  /** the units both changed, e.g. `sources.shop.resources.orders`, `sources.shop.last_sync` */
  paths: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `pipeline ${this.pipelineName}: this run and another run both changed ${this.paths.join(", ")} since state version ${this.baseVersion} (the destination is now at version ${this.remoteVersion}); nothing was written. Run again to start from the new state, or split the work so that each run changes its own resources' state (Source.decompose).`
  }
}

// ---------------------------------------------------------------------------------------------
// Units
// ---------------------------------------------------------------------------------------------

type Unit =
  | { readonly kind: "key"; readonly key: string }
  | { readonly kind: "sourceKey"; readonly source: string; readonly key: string }
  | { readonly kind: "resource"; readonly source: string; readonly resource: string }
  | { readonly kind: "resources"; readonly source: string }

// the document keys that are not state content
const NOT_UNITS = new Set(["sources", "_local", "_state_version", "_state_engine_version", "_version_hash"])

// the same spelling as the slot paths of the context modules (Slots.ts)
const segment = (name: string): string => (/^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`)

const sourcePath = (source: string): string => `sources${segment(source)}`

const pathOf = (unit: Unit): string => {
  switch (unit.kind) {
    case "key": {
      const s = segment(unit.key)
      return s.startsWith(".") ? s.slice(1) : s
    }
    case "sourceKey":
      return `${sourcePath(unit.source)}${segment(unit.key)}`
    case "resource":
      return `${sourcePath(unit.source)}.resources${segment(unit.resource)}`
    case "resources":
      return `${sourcePath(unit.source)}.resources`
  }
}

type Obj = { readonly [key: string]: unknown }

const isPlainObject = (value: unknown): value is Obj => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const own = (record: Obj | undefined, key: string): unknown =>
  record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined

const setOwn = (record: Record<string, unknown>, key: string, value: unknown): void => {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true })
}

const sourceOf = (doc: PipelineState, source: string): Obj | undefined => {
  const slot = own(doc.sources, source)
  return isPlainObject(slot) ? slot : undefined
}

const resourcesOf = (doc: PipelineState, source: string): unknown => own(sourceOf(doc, source), "resources")

const valueAt = (doc: PipelineState, unit: Unit): unknown => {
  switch (unit.kind) {
    case "key":
      return NOT_UNITS.has(unit.key) ? undefined : own(doc as Obj, unit.key)
    case "sourceKey":
      return own(sourceOf(doc, unit.source), unit.key)
    case "resource": {
      const resources = resourcesOf(doc, unit.source)
      return isPlainObject(resources) ? own(resources, unit.resource) : undefined
    }
    case "resources":
      return resourcesOf(doc, unit.source)
  }
}

const definedKeys = (record: Obj | undefined): ReadonlyArray<string> =>
  record === undefined ? [] : Object.keys(record).filter((key) => record[key] !== undefined)

// every unit any of the documents holds, by path; `coarse` holds the sources whose `resources`
// is not an object in some document
const unitsOf = (
  docs: ReadonlyArray<PipelineState>
): { readonly units: Map<string, Unit>; readonly coarse: ReadonlySet<string> } => {
  const units = new Map<string, Unit>()
  const add = (unit: Unit) => {
    const path = pathOf(unit)
    if (!units.has(path)) units.set(path, unit)
  }
  for (const doc of docs) {
    for (const key of definedKeys(doc as Obj)) if (!NOT_UNITS.has(key)) add({ kind: "key", key })
  }
  const sources = new Set(docs.flatMap((doc) => Object.keys(doc.sources)))
  const coarse = new Set<string>()
  for (const source of sources) {
    const resources = docs.map((doc) => resourcesOf(doc, source))
    if (resources.some((r) => r !== undefined && !isPlainObject(r))) coarse.add(source)
    for (const doc of docs) {
      for (const key of definedKeys(sourceOf(doc, source))) {
        if (key !== "resources") add({ kind: "sourceKey", source, key })
      }
    }
    if (coarse.has(source)) {
      if (resources.some((r) => r !== undefined)) add({ kind: "resources", source })
    } else {
      for (const r of resources) {
        for (const resource of definedKeys(r as Obj | undefined)) add({ kind: "resource", source, resource })
      }
    }
  }
  return { units, coarse }
}

const textOf = (value: unknown, path: string): Either.Either<string, NonSerializableStateValue> =>
  stringifySorted(value, path)

// the same state value as the version hash sees it (absent differs from any value)
const same = (a: unknown, b: unknown, path: string): Either.Either<boolean, NonSerializableStateValue> => {
  if (a === b) return Either.right(true)
  if (a === undefined || b === undefined) return Either.right(false)
  return Either.flatMap(textOf(a, path), (ta) => Either.map(textOf(b, path), (tb) => ta === tb))
}

const changedUnits = (
  base: PipelineState,
  next: PipelineState,
  units: ReadonlyMap<string, Unit>
): Either.Either<Set<string>, NonSerializableStateValue> => {
  const changed = new Set<string>()
  for (const [path, unit] of units) {
    const equal = same(valueAt(base, unit), valueAt(next, unit), path)
    if (Either.isLeft(equal)) return Either.left(equal.left)
    if (!equal.right) changed.add(path)
  }
  return Either.right(changed)
}

const resetUnit = (ref: ResourceRef, coarse: ReadonlySet<string>): Unit =>
  coarse.has(ref.source)
    ? { kind: "resources", source: ref.source }
    : { kind: "resource", source: ref.source, resource: ref.resource }

const sortedPaths = (paths: Iterable<string>): ReadonlyArray<string> => [...paths].sort()

/**
 * The unit paths (see the module's description) whose value differs between `base` and `next`,
 * sorted, with `resets` counted as changed.
 *
 * @example
 * ```ts
 * StateRebase.changedPaths(start, draft) // Right(["sources.shop.last_sync", "sources.shop.resources.orders"])
 * ```
 *
 * @since 0.1.0
 */
export const changedPaths = (
  base: PipelineState,
  next: PipelineState,
  resets: ReadonlyArray<ResourceRef> = []
): Either.Either<ReadonlyArray<string>, NonSerializableStateValue> => {
  const { units, coarse } = unitsOf([base, next])
  return Either.map(changedUnits(base, next, units), (changed) => {
    for (const ref of resets) changed.add(pathOf(resetUnit(ref, coarse)))
    return sortedPaths(changed)
  })
}

// ---------------------------------------------------------------------------------------------
// Rebase
// ---------------------------------------------------------------------------------------------

// whether a slot around units exists after the merge (symmetric in the two sides)
const keepSlot = (remains: boolean, inBase: boolean, inOurs: boolean, inTheirs: boolean): boolean =>
  remains || (!inBase && (inOurs || inTheirs)) || (inBase && inOurs && inTheirs)

const apply = (target: Record<string, unknown>, key: string, value: unknown): void => {
  if (value === undefined) delete target[key]
  else setOwn(target, key, value)
}

const copy = (record: Obj | undefined): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  if (record !== undefined) for (const key of Object.keys(record)) setOwn(out, key, record[key])
  return out
}

/**
 * Applies this run's changes since `base` onto `remote` when no state unit was changed by both
 * sides (see the module's description); else fails with {@link RebaseConflict} naming the units
 * both changed. Fails with `NonSerializableStateValue` (naming its path) when a value cannot be
 * encoded as typed JSON — the commit would fail on it too.
 *
 * Properties (checked by the tests): disjoint changes commute (rebasing a's changes onto b gives
 * the content of rebasing b's onto a); rebasing onto `remote` = `base` gives the draft's content;
 * a conflict is reported exactly when the two sides' changed paths intersect.
 *
 * @example
 * ```ts
 * const result = StateRebase.rebase({ base, remote, draft })
 * if (Either.isRight(result)) {
 *   const next = yield* PipelineState.bumpVersion(result.right.state) // version remote+1
 * }
 * ```
 *
 * @since 0.1.0
 */
export const rebase = (input: RebaseInput): Either.Either<Rebased, RebaseConflict | NonSerializableStateValue> => {
  const { base, remote, draft } = input
  const { units, coarse } = unitsOf([base, remote, draft])
  for (const ref of input.resets ?? []) {
    const unit = resetUnit(ref, coarse)
    units.set(pathOf(unit), unit)
  }
  const oursE = changedUnits(base, draft, units)
  if (Either.isLeft(oursE)) return Either.left(oursE.left)
  const ours = oursE.right
  for (const ref of input.resets ?? []) ours.add(pathOf(resetUnit(ref, coarse)))
  const theirsE = changedUnits(base, remote, units)
  if (Either.isLeft(theirsE)) return Either.left(theirsE.left)
  const theirs = theirsE.right

  const both = [...ours].filter((path) => theirs.has(path))
  if (both.length > 0) {
    return Either.left(
      new RebaseConflict({
        pipelineName: remote.pipeline_name,
        baseVersion: base._state_version,
        remoteVersion: remote._state_version,
        paths: sortedPaths(both)
      })
    )
  }

  // this run's changed units, grouped by where they live
  const topKeys: Array<string> = []
  const bySource = new Map<string, Array<Unit>>()
  for (const path of ours) {
    const unit = units.get(path)!
    if (unit.kind === "key") topKeys.push(unit.key)
    else {
      const list = bySource.get(unit.source) ?? []
      list.push(unit)
      bySource.set(unit.source, list)
    }
  }

  const has = (doc: PipelineState, source: string) => sourceOf(doc, source) !== undefined
  const hasResources = (doc: PipelineState, source: string) => resourcesOf(doc, source) !== undefined

  const sources = copy(remote.sources)
  const allSources = new Set([
    ...Object.keys(remote.sources),
    ...Object.keys(draft.sources),
    ...Object.keys(base.sources)
  ])
  for (const source of allSources) {
    const changes = bySource.get(source) ?? []
    const oursCreatedOrRemoved = has(base, source) !== has(draft, source)
    const oursResourcesCreatedOrRemoved = hasResources(base, source) !== hasResources(draft, source)
    // nothing of ours here: the remote slot stands as it is
    if (changes.length === 0 && !oursCreatedOrRemoved && !oursResourcesCreatedOrRemoved) continue

    const remoteSlot = sourceOf(remote, source)
    const slot = copy(remoteSlot)
    let coarseResources = false
    for (const unit of changes) {
      if (unit.kind === "sourceKey") apply(slot, unit.key, valueAt(draft, unit))
      else if (unit.kind === "resources") {
        coarseResources = true
        apply(slot, "resources", valueAt(draft, unit))
      }
    }
    if (!coarse.has(source) && !coarseResources) {
      const remoteResources = resourcesOf(remote, source)
      const resources = copy(isPlainObject(remoteResources) ? remoteResources : undefined)
      for (const unit of changes) {
        if (unit.kind === "resource") apply(resources, unit.resource, valueAt(draft, unit))
      }
      const keepResources = keepSlot(
        Object.keys(resources).length > 0,
        hasResources(base, source),
        hasResources(draft, source),
        hasResources(remote, source)
      )
      if (keepResources) setOwn(slot, "resources", resources)
      else delete slot.resources
    }
    const keepSource = keepSlot(
      Object.keys(slot).length > 0,
      has(base, source),
      has(draft, source),
      has(remote, source)
    )
    if (keepSource) setOwn(sources, source, slot)
    else delete sources[source]
  }

  const state = copy(remote as Obj)
  for (const key of topKeys) apply(state, key, own(draft as Obj, key))
  setOwn(state, "sources", sources as { readonly [source: string]: Slot })
  setOwn(state, "_local", draft._local)
  return Either.right({
    state: state as unknown as PipelineState,
    ours: sortedPaths(ours),
    theirs: sortedPaths(theirs)
  })
}
