/**
 * The soak's checks, as pure functions of what the destination holds: each returns the problems it
 * found (an empty list when everything holds).
 */
import { EPOCH, type Item } from "../examples/incremental-api/api.js"
import type { Facts } from "./pg.js"

const describeItem = (item: Item): string =>
  `${item.id}|${item.name}|${item.status}|${item.amount}|${item.version}|${item.updated_at}`

const list = (ids: ReadonlyArray<number>): string =>
  ids.length <= 12 ? ids.join(", ") : `${ids.slice(0, 12).join(", ")} ... (${ids.length})`

/**
 * Compares rows with the items they must be, by primary key AND content: missing, extra,
 * duplicated and changed ids.
 */
export const diffItems = (
  what: string,
  actual: ReadonlyArray<Item>,
  expected: ReadonlyArray<Item>
): ReadonlyArray<string> => {
  const wanted = new Map(expected.map((item) => [item.id, describeItem(item)]))
  const counts = new Map<number, number>()
  const changed: Array<number> = []
  const extra: Array<number> = []
  let example = ""
  for (const item of actual) {
    counts.set(item.id, (counts.get(item.id) ?? 0) + 1)
    const expectedText = wanted.get(item.id)
    if (expectedText === undefined) extra.push(item.id)
    else if (expectedText !== describeItem(item)) {
      changed.push(item.id)
      if (example === "") example = ` (e.g. ${describeItem(item)} instead of ${expectedText})`
    }
  }
  const missing = expected.filter((item) => !counts.has(item.id)).map((item) => item.id)
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id)
  const out: Array<string> = []
  if (missing.length > 0) out.push(`${what}: ${missing.length} missing ids: ${list(missing)}`)
  if (extra.length > 0) out.push(`${what}: ${extra.length} unexpected ids: ${list(extra)}`)
  if (duplicated.length > 0) out.push(`${what}: ${duplicated.length} duplicated ids: ${list(duplicated)}`)
  if (changed.length > 0) out.push(`${what}: ${changed.length} ids with other content: ${list(changed)}${example}`)
  return out
}

/** the mutation step whose changes are stamped `lastValue` (`initialClock` is the catalog's clock before any) */
export const stepOf = (lastValue: Date, initialClock: number): number =>
  (lastValue.getTime() - EPOCH) / 1000 - initialClock

/**
 * What must hold after EVERY run, whatever happened to it: no duplicate, no row of an unfinished
 * load, state rows numbered 0, 1, 2, ... in load order with distinct hashes, one state row per load,
 * the cursor equal to the newest `updated_at` loaded, and the rows exactly the API's items as they
 * were at the cursor's step (the API only changes between runs, so a committed run loads a complete
 * snapshot).
 */
export const invariants = (
  facts: Facts,
  options: {
    /** the catalog's items after each mutation step (index = step) */
    readonly history: ReadonlyArray<ReadonlyArray<Item>>
    readonly initialClock: number
  }
): ReadonlyArray<string> => {
  const out: Array<string> = []
  if (facts.rows !== facts.distinctIds) {
    out.push(`items: ${facts.rows} rows for ${facts.distinctIds} ids (duplicates)`)
  }
  if (facts.incompleteLoads !== 0) out.push(`_dlt_loads: ${facts.incompleteLoads} loads with status <> 0`)
  if (facts.orphanRows !== 0) out.push(`items: ${facts.orphanRows} rows of no completed load`)
  facts.versions.forEach((row, i) => {
    if (!row.complete) out.push(`state row of load ${row.loadId} (version ${row.version}) has no completed load`)
    if (row.version !== i) {
      out.push(
        `state versions in load order are not 0, 1, 2, ...: row ${i} (load ${row.loadId}) has version ${row.version}`
      )
    }
  })
  const hashes = new Set(facts.versions.map((v) => v.hash))
  if (hashes.size !== facts.versions.length) {
    out.push(`${facts.versions.length} state rows but ${hashes.size} distinct version hashes`)
  }
  if (facts.loads !== facts.versions.length) {
    out.push(`${facts.loads} loads but ${facts.versions.length} state rows (every load of this pipeline changes state)`)
  }
  const newest = facts.newest
  if (newest === null) {
    if (facts.rows > 0) out.push(`items holds ${facts.rows} rows but there is no committed state`)
    return out
  }
  if (newest.problem !== null || newest.lastValue === null) {
    out.push(`newest state (version ${newest.version}): ${newest.problem ?? "no cursor"}`)
    return out
  }
  const lastValue = newest.lastValue.toISOString()
  if (facts.maxUpdatedAt !== lastValue) {
    out.push(`state cursor last_value ${lastValue} but max(updated_at) in items is ${facts.maxUpdatedAt}`)
  }
  const step = stepOf(newest.lastValue, options.initialClock)
  const snapshot = options.history[step]
  if (!Number.isInteger(step) || snapshot === undefined) {
    out.push(`state cursor last_value ${lastValue} is no mutation step of the API (0..${options.history.length - 1})`)
    return out
  }
  out.push(...diffItems(`items against the API at step ${step} (the cursor's)`, facts.items, snapshot))
  return out
}

/** whether the run took the destination one complete commit forward (true), left it alone (false), or neither (a problem) */
export const transition = (
  before: Facts,
  after: Facts,
  options: { readonly step: number; readonly initialClock: number }
): { readonly advanced: boolean; readonly problems: ReadonlyArray<string> } => {
  const prefixSame = before.versions.every((row, i) => {
    const other = after.versions[i]
    return (
      other !== undefined && other.loadId === row.loadId && other.hash === row.hash && other.version === row.version
    )
  })
  if (!prefixSame) {
    return { advanced: false, problems: ["the state rows committed before the run changed"] }
  }
  if (after.versions.length === before.versions.length) {
    const problems: Array<string> = []
    if (after.loads !== before.loads) problems.push(`no new state row, but ${after.loads - before.loads} new loads`)
    problems.push(...diffItems("items against before the run", after.items, before.items))
    return { advanced: false, problems }
  }
  const problems: Array<string> = []
  if (after.versions.length !== before.versions.length + 1) {
    problems.push(`${after.versions.length - before.versions.length} new state rows in one run`)
  }
  if (after.loads !== before.loads + 1) problems.push(`${after.loads - before.loads} new loads in one run`)
  const cursor = after.newest?.lastValue
  if (cursor === null || cursor === undefined) problems.push("a new state row without a cursor")
  else {
    const step = stepOf(cursor, options.initialClock)
    if (step !== options.step) {
      problems.push(`a commit that did not load every change: cursor at step ${step}, the API at step ${options.step}`)
    }
  }
  return { advanced: true, problems }
}
