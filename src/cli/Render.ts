/**
 * How the CLI prints state, pipelines, versions and plans: pure functions from data to text (or to
 * plain JSON for `--json`), so that they are tested without running a command.
 *
 * @since 0.1.0
 */
import { BigDecimal, Either, Option } from "effect"
import type * as PipestateConfig from "../config/PipestateConfig.js"
import type * as Drop from "../pipeline/Drop.js"
import type * as History from "../pipeline/History.js"
import type * as Schemas from "../internal/pipeline/Schemas.js"
import * as StateSync from "../internal/pipeline/StateSync.js"
import * as StoredSchema from "../internal/schema/StoredSchema.js"
import * as PipelineState from "../internal/state/PipelineState.js"
import * as StateValue from "../state/StateValue.js"

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

const isRecord = (value: unknown): value is { readonly [key: string]: StateValue.StateValue } =>
  typeof value === "object" &&
  value !== null &&
  !Array.isArray(value) &&
  (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)

// the decimal's text as the state stores it (Python's str(Decimal) keeps the scale: "1.50"); the
// typed JSON of a decimal is one mark character followed by that text
const decimalText = (value: BigDecimal.BigDecimal): string =>
  Either.match(StateValue.encode(value), {
    onLeft: () => BigDecimal.format(value),
    onRight: (json) => (typeof json === "string" ? json.slice(1) : BigDecimal.format(value))
  })

const isoOf = (date: Date): string => (Number.isNaN(date.getTime()) ? "invalid" : date.toISOString())

/** a value that is no container, as text; `undefined` for arrays and objects */
const scalar = (value: StateValue.StateValue): string | undefined => {
  if (value === null) return "null"
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number" || typeof value === "boolean") return String(value)
  if (value instanceof Date) return `datetime(${isoOf(value)})`
  // the stored text: microseconds, offset or naive
  if (value instanceof StateValue.Timestamp) return `datetime(${value})`
  if (typeof value === "bigint") return String(value)
  if (value instanceof StateValue.Float) return StateValue.formatFloat(value.value)
  if (value instanceof StateValue.SpecialDecimal) return `decimal(${value.text})`
  if (value instanceof Uint8Array) {
    const shown = Buffer.from(value.subarray(0, 32)).toString("hex")
    return `bytes(${value.length}: ${shown}${value.length > 32 ? "…" : ""})`
  }
  if (value instanceof StateValue.Uuid) return `uuid(${value.value})`
  if (value instanceof StateValue.CalendarDate) return `date(${value.iso})`
  if (value instanceof StateValue.TimeOfDay) return `time(${value.iso})`
  if (BigDecimal.isBigDecimal(value)) return `decimal(${decimalText(value)})`
  return undefined
}

/**
 * A state value pretty-printed for humans: JSON layout (2-space indent), with the typed values
 * shown as `datetime(...)`, `decimal(...)`, `uuid(...)`, `date(...)`, `time(...)`, `bytes(n: hex)`.
 * Continuation lines are indented by `indent`.
 *
 * @example
 * ```ts
 * prettyValue({ since: new Date(0), ids: [1, 2] })
 * // {
 * //   "since": datetime(1970-01-01T00:00:00.000Z),
 * //   "ids": [
 * //     1,
 * //     2
 * //   ]
 * // }
 * ```
 *
 * @since 0.1.0
 */
export const prettyValue = (value: StateValue.StateValue, indent = ""): string => {
  const simple = scalar(value)
  if (simple !== undefined) return simple
  const inner = `${indent}  `
  if (Array.isArray(value)) {
    const items = value as ReadonlyArray<StateValue.StateValue>
    if (items.length === 0) return "[]"
    return `[\n${items.map((item) => `${inner}${prettyValue(item, inner)}`).join(",\n")}\n${indent}]`
  }
  if (isRecord(value)) {
    const keys = Object.keys(value)
    if (keys.length === 0) return "{}"
    return `{\n${keys.map((key) => `${inner}${JSON.stringify(key)}: ${prettyValue(value[key] ?? null, inner)}`).join(",\n")}\n${indent}}`
  }
  return String(value)
}

/**
 * Cuts `text` after `max` characters, marking how much was left out.
 *
 * @example
 * ```ts
 * cut("ab".repeat(6_000), 10) // "ababababab… (11,990 more chars)"
 * cut("[\n  1,\n  2,\n  3\n]", 10) // "[\n  1,\n  … (10 more chars)"
 * ```
 *
 * @since 0.1.0
 */
export const cut = (text: string, max: number): string => {
  if (text.length <= max) return text
  // a pretty-printed value reads better cut between lines, the marker indented like the next line
  const newline = text.lastIndexOf("\n", max)
  if (newline > max / 2) {
    const rest = text.slice(newline + 1)
    const indent = /^ */.exec(rest)?.[0] ?? ""
    return `${text.slice(0, newline)}\n${indent}… (${rest.length.toLocaleString("en-US")} more chars)`
  }
  // never split a surrogate pair
  const end = /[\uD800-\uDBFF]/.test(text.charAt(max - 1)) ? max - 1 : max
  return `${text.slice(0, end)}… (${(text.length - end).toLocaleString("en-US")} more chars)`
}

/**
 * A state value as plain JSON for scripts: typed values become strings (ISO 8601 datetimes, dates
 * and times, decimal text, UUID text, standard base64 bytes).
 *
 * @example
 * ```ts
 * displayJson({ at: new Date(0) }) // { at: "1970-01-01T00:00:00.000Z" }
 * ```
 *
 * @since 0.1.0
 */
export const displayJson = (value: StateValue.StateValue): StateValue.Json => {
  if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return value
  }
  if (value instanceof Date) return isoOf(value)
  // JSON.stringify writes neither: a Float as its number, an int past 2^53 as its digits in a string
  if (typeof value === "bigint") return String(value)
  if (value instanceof StateValue.Float) return value.value
  if (value instanceof StateValue.Timestamp) return String(value)
  if (value instanceof StateValue.SpecialDecimal) return value.text
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64")
  if (value instanceof StateValue.Uuid) return value.value
  if (value instanceof StateValue.CalendarDate || value instanceof StateValue.TimeOfDay) return value.iso
  if (BigDecimal.isBigDecimal(value)) return decimalText(value)
  if (Array.isArray(value)) return (value as ReadonlyArray<StateValue.StateValue>).map(displayJson)
  if (isRecord(value)) {
    // fromEntries defines own properties, so a `__proto__` key stays a key
    return Object.fromEntries(Object.keys(value).map((key) => [key, displayJson(value[key] ?? null)]))
  }
  return String(value)
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/**
 * Left-aligned columns separated by two spaces, trailing spaces trimmed.
 *
 * @example
 * ```ts
 * columns([["NAME", "VERSION"], ["chess_pipeline", "1"]])
 * // "NAME            VERSION\nchess_pipeline  1"
 * ```
 *
 * @since 0.1.0
 */
export const columns = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths: Array<number> = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length)
    })
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

// ---------------------------------------------------------------------------------------------
// info
// ---------------------------------------------------------------------------------------------

/**
 * What `info` shows.
 *
 * @since 0.1.0
 */
export interface Info {
  readonly name: string
  readonly workingDir: string
  readonly state: PipelineState.PipelineState
  /** where the CLI would reach the dataset */
  readonly location: string
  readonly options: ReadonlyArray<PipestateConfig.Described>
}

const slotKeys = (slot: PipelineState.Slot, skip?: string): ReadonlyArray<string> =>
  Object.keys(slot).filter((key) => key !== skip)

const slotLines = (
  slot: PipelineState.Slot,
  keys: ReadonlyArray<string>,
  indent: string,
  maxChars: number | undefined
): Array<string> =>
  keys.map((key) => {
    const text = prettyValue(slot[key] ?? null, indent)
    return `${indent}${key}: ${maxChars === undefined ? text : cut(text, maxChars)}`
  })

/**
 * `info` as text. Without `verbose` the slots show their keys; with it their values, pretty-printed
 * and cut after `maxChars` characters (`undefined`: never cut).
 *
 * @since 0.1.0
 */
export const infoText = (
  info: Info,
  options: { readonly verbose: boolean; readonly maxChars: number | undefined }
): string => {
  const { state } = info
  const lastRun = state._local._last_extracted_at
  const schemas = (state.schema_names ?? []).map((s) => (s === state.default_schema_name ? `${s} (default)` : s))
  const kind = StateSync.destinationKind(state)
  const destination =
    kind === undefined ? "(none yet)" : `${kind}${state.destination_type ? ` (${state.destination_type})` : ""}`
  const lines: Array<string> = [
    `pipeline ${info.name}`,
    columns([
      ["  working dir:", info.workingDir],
      ["  destination:", destination],
      ["  location:", info.location],
      ["  dataset:", state.dataset_name ?? "(none)"],
      ["  state version:", String(state._state_version)],
      ["  version hash:", state._version_hash ?? "(none yet)"],
      ["  first run:", state._local.first_run ? "yes (nothing loaded yet)" : "no"],
      ["  last run:", lastRun === undefined ? "(never)" : isoOf(lastRun)],
      ["  schemas:", schemas.length === 0 ? "(none)" : schemas.join(", ")]
    ]),
    ""
  ]
  const sources = Object.keys(state.sources)
  lines.push(
    sources.length === 0 ? "sources: (none: no source or resource stored state yet)" : `sources (${sources.length}):`
  )
  for (const source of sources) {
    const slot = PipelineState.getSourceSlot(state, source)
    const own = slotKeys(slot, "resources")
    lines.push(`  ${source}`)
    if (own.length === 0) lines.push("    source state: (empty)")
    else if (!options.verbose) lines.push(`    source state: ${own.join(", ")}`)
    else lines.push("    source state:", ...slotLines(slot, own, "      ", options.maxChars))
    const resources = PipelineState.getResourceSlots(state, source)
    const names = Object.keys(resources)
    lines.push(names.length === 0 ? "    resources: (none)" : `    resources (${names.length}):`)
    for (const resource of names) {
      const rslot = PipelineState.getResourceSlot(state, source, resource)
      const keys = slotKeys(rslot)
      if (!options.verbose) lines.push(`      ${resource}: ${keys.length === 0 ? "(empty)" : keys.join(", ")}`)
      else if (keys.length === 0) lines.push(`      ${resource}: (empty)`)
      else lines.push(`      ${resource}`, ...slotLines(rslot, keys, "        ", options.maxChars))
    }
  }
  lines.push("", "options (effective value, where it came from):")
  lines.push(columns(info.options.map((row) => [`  ${row.key}`, row.value, row.origin])))
  return lines.join("\n")
}

/**
 * `info --json`: one document with every slot's values as plain JSON (see {@link displayJson}).
 *
 * @since 0.1.0
 */
export const infoJson = (info: Info): StateValue.Json => {
  const { state } = info
  const sources: Record<string, StateValue.Json> = {}
  for (const source of Object.keys(state.sources)) {
    const { resources: _resources, ...own } = PipelineState.getSourceSlot(state, source)
    const resources = PipelineState.getResourceSlots(state, source)
    Object.defineProperty(sources, source, {
      value: { state: displayJson(own), resources: displayJson(resources) },
      enumerable: true
    })
  }
  const lastRun = state._local._last_extracted_at
  return {
    pipeline_name: info.name,
    working_dir: info.workingDir,
    destination: {
      name: StateSync.destinationKind(state) ?? null,
      type: state.destination_type ?? null,
      location: info.location
    },
    dataset: state.dataset_name,
    state_version: state._state_version,
    version_hash: state._version_hash ?? null,
    first_run: state._local.first_run,
    last_extracted_at: lastRun === undefined ? null : isoOf(lastRun),
    schema_names: [...(state.schema_names ?? [])],
    default_schema_name: state.default_schema_name ?? null,
    sources,
    options: info.options.map((row) => ({ key: row.key, value: row.value, origin: row.origin }))
  }
}

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

/**
 * A row of `pipeline list`: the pipeline's local state, or why it cannot be read.
 *
 * @since 0.1.0
 */
export interface ListedPipeline {
  readonly name: string
  readonly state: Option.Option<PipelineState.PipelineState>
  readonly problem: Option.Option<string>
}

/**
 * `pipeline list` as text.
 *
 * @since 0.1.0
 */
export const listText = (pipelinesDir: string, pipelines: ReadonlyArray<ListedPipeline>): string => {
  if (pipelines.length === 0) return `no pipelines in ${pipelinesDir}`
  const header = `${pipelines.length} pipeline${pipelines.length === 1 ? "" : "s"} in ${pipelinesDir}`
  const rows = pipelines.map((p) =>
    Option.match(p.state, {
      onNone: () => [p.name, Option.getOrElse(p.problem, () => "(unreadable)"), "", "", ""],
      onSome: (s) => [
        p.name,
        StateSync.destinationKind(s) ?? "(none yet)",
        s.dataset_name ?? "(none)",
        String(s._state_version),
        s._local._last_extracted_at === undefined ? "(never)" : isoOf(s._local._last_extracted_at)
      ]
    })
  )
  return `${header}\n${columns([["NAME", "DESTINATION", "DATASET", "VERSION", "LAST RUN"], ...rows])}`
}

/**
 * `pipeline list --json`.
 *
 * @since 0.1.0
 */
export const listJson = (pipelinesDir: string, pipelines: ReadonlyArray<ListedPipeline>): StateValue.Json => ({
  pipelines_dir: pipelinesDir,
  pipelines: pipelines.map((p) =>
    Option.match(p.state, {
      onNone: () => ({ name: p.name, error: Option.getOrElse(p.problem, () => "unreadable") }),
      onSome: (s) => ({
        name: p.name,
        destination: StateSync.destinationKind(s) ?? null,
        dataset: s.dataset_name,
        state_version: s._state_version,
        last_extracted_at: s._local._last_extracted_at === undefined ? null : isoOf(s._local._last_extracted_at)
      })
    })
  )
})

// ---------------------------------------------------------------------------------------------
// history
// ---------------------------------------------------------------------------------------------

/**
 * `history` as text; the version whose hash the local state has is marked.
 *
 * @since 0.1.0
 */
export const historyText = (
  heading: string,
  versions: ReadonlyArray<History.StateVersion>,
  localHash: Option.Option<string>
): string => {
  if (versions.length === 0) return `${heading}: no state versions`
  // runs with checkpoints: the run each version's load belongs to, and which checkpoint it was
  const runs = versions.some((v) => v.run !== undefined)
  const runOf = (v: History.StateVersion) =>
    v.run === undefined ? "" : `${v.run.runId} #${v.run.checkpoint}${v.run.final ? " final" : ""}`
  const rows = versions.map((v) => [
    String(v.version),
    v.hash ?? "(none)",
    v.loadId,
    isoOf(v.createdAt),
    ...(runs ? [runOf(v)] : []),
    Option.isSome(localHash) && v.hash === localHash.value ? "local" : ""
  ])
  const header = ["VERSION", "HASH", "LOAD ID", "CREATED AT", ...(runs ? ["RUN (CHECKPOINT)"] : []), ""]
  return `${heading}:\n${columns([header, ...rows])}`
}

/**
 * `history --json`.
 *
 * @since 0.1.0
 */
export const historyJson = (versions: ReadonlyArray<History.StateVersion>): StateValue.Json =>
  versions.map((v) => ({
    version: v.version,
    hash: v.hash,
    load_id: v.loadId,
    created_at: isoOf(v.createdAt),
    engine_version: v.engineVersion,
    ...(v.run === undefined ? {} : { run: { run_id: v.run.runId, checkpoint: v.run.checkpoint, final: v.run.final } })
  }))

// ---------------------------------------------------------------------------------------------
// schema
// ---------------------------------------------------------------------------------------------

/**
 * The stored schemas as text: each table with its resource and write disposition, each column with
 * its dlt data type, nullability and keys.
 *
 * @since 0.1.0
 */
export const schemaText = (heading: string, schemas: ReadonlyArray<Schemas.Found>): string => {
  if (schemas.length === 0) return `${heading}: no stored schema yet (the pipeline has not loaded)`
  const lines = [`${heading}:`]
  for (const { schema, from } of schemas) {
    lines.push(
      "",
      `schema ${schema.name}: version ${schema.version}, hash ${schema.version_hash}, engine ${schema.engine_version} (from the ${from})`
    )
    const tables = StoredSchema.dataTables(schema)
    if (tables.length === 0) lines.push("  no data tables")
    for (const table of tables) {
      lines.push(
        "",
        `  table ${table.name}  resource ${StoredSchema.resourceOf(schema, table)}, write disposition ${table.write_disposition ?? "append"}${table.parent === undefined ? "" : `, nested in ${table.parent}`}`
      )
      const rows = Object.values(table.columns).map((column) => {
        const field = StoredSchema.fieldOf(column)
        return [
          `    ${column.name}`,
          column.data_type ?? "(no type yet)",
          column.nullable === false ? "not null" : "null",
          [
            column.primary_key === true ? "primary key" : "",
            column.merge_key === true ? "merge key" : "",
            column.unique === true ? "unique" : ""
          ]
            .filter((k) => k !== "")
            .join(", "),
          field === undefined ? "" : `from field ${JSON.stringify(field)}`
        ]
      })
      lines.push(columns([["    COLUMN", "TYPE", "NULLABLE", "KEYS", ""], ...rows]))
    }
  }
  return lines.join("\n")
}

/**
 * `schema --json`: the stored schema documents as dlt stores them in `_dlt_version`.
 *
 * @since 0.1.0
 */
export const schemaJson = (schemas: ReadonlyArray<Schemas.Found>): unknown =>
  schemas.map(({ schema }) => JSON.parse(StoredSchema.toText(schema)) as unknown)

// ---------------------------------------------------------------------------------------------
// drop and restore
// ---------------------------------------------------------------------------------------------

const describeDropped = (r: Drop.DroppedResource, present: ReadonlySet<string>): string => {
  if (r.tables.length === 0) return r.hasState ? "state only" : "nothing (no state, no table)"
  const tables = r.tables.map((t) => `${t}${present.has(t) ? "" : " (not in the destination)"}`).join(", ")
  return `${r.hasState ? "state" : "no state"} and table${r.tables.length === 1 ? "" : "s"} ${tables}`
}

/**
 * What a drop is about to do, as text.
 *
 * @since 0.1.0
 */
export const dropPreviewText = (preview: Drop.DropPreview): string => {
  const { plan } = preview
  const present = new Set(preview.presentTables)
  const lines = [
    `pipeline ${preview.pipelineName}, dataset ${preview.dataset} (${preview.location}), state version ${preview.fromVersion}`
  ]
  if (plan.resources.length > 0) {
    lines.push(`resources to drop (${plan.resources.length}):`)
    lines.push(columns(plan.resources.map((r) => [`  ${r.source}.${r.resource}`, describeDropped(r, present)])))
  }
  if (plan.tables.length > 0) lines.push(`tables to drop: ${plan.tables.join(", ")}`)
  if (plan.keptReservedTables.length > 0)
    lines.push(`tables kept (_dlt* are never dropped): ${plan.keptReservedTables.join(", ")}`)
  if (plan.sources.length > 0) lines.push(`source state dropped entirely: ${plan.sources.join(", ")}`)
  if (plan.statePaths.length > 0) {
    lines.push(`state paths to reset (${plan.statePaths.length}; tables untouched):`)
    for (const p of plan.statePaths) lines.push(`  sources.${p.source}: ${p.path}`)
  }
  for (const warning of plan.warnings) lines.push(`warning: ${warning}`)
  if (plan.isEmpty) lines.push("nothing to drop")
  return lines.join("\n")
}

/**
 * What a restore is about to do, as text.
 *
 * @since 0.1.0
 */
export const restorePreviewText = (preview: History.RestorePreview): string =>
  [
    `pipeline ${preview.pipelineName}, dataset ${preview.dataset} (${preview.location})`,
    `restore the content of state version ${preview.from.version} (hash ${preview.from.hash ?? "none"}, load ${preview.from.loadId}, ${isoOf(preview.from.createdAt)})`,
    `as new state version ${preview.nextVersion}; the newest now is version ${preview.newest.version} (hash ${preview.newest.hash ?? "none"})`,
    ...(preview.resetResources.length === 0
      ? []
      : [
          `resource state reset, their tables are no longer in the dataset: ${preview.resetResources.join(", ")} (their next run loads them again)`
        ]),
    ...(preview.laterRows.length === 0
      ? []
      : [
          `warning: rows loaded after version ${preview.from.version} stay in the dataset: ${preview.laterRows
            .map((t) => `${t.table} (${t.rows} row${t.rows === 1 ? "" : "s"})`)
            .join(
              ", "
            )}. The restored state does not know them, so the next run may load them again (an append table then holds them twice); to reload them cleanly, drop their resources after the restore (drop ${[
            ...new Set(preview.laterRows.flatMap((t) => t.resources))
          ].join(" ")}, with the same flags)`
        ])
  ].join("\n")
