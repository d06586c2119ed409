/**
 * The JSONPath subset that `pipestate pipeline <name> drop --state-paths` accepts, with a matcher
 * and an immutable remover over a source state object.
 *
 * Grammar (whitespace is allowed only inside quoted keys):
 *
 * ```text
 * path     = [ "$" ] first? step*
 * first    = name | "*"                      ; a relative path may start with a bare key
 * step     = "." ( name | "*" )
 *          | ".." ( name | "*" | bracket )  ; recursive descent
 *          | bracket
 * bracket  = "[" ( integer | "*" | quoted ) "]"
 * name     = ( letter | "_" | "$" ) ( letter | digit | "_" | "$" | "-" )*
 * integer  = [ "-" ] digit+                  ; negative counts from the end of an array
 * quoted   = "'" ... "'" | '"' ... '"'       ; JSON escapes, plus \' inside either quote
 * ```
 *
 * Decisions worth knowing:
 * - A dotted name never starts with a digit or `-`: `a.0` is rejected, like jsonpath-ng does, rather
 *   than silently meaning the object key `"0"` when the user wanted the first array element. Write
 *   `a[0]` for an element and `a['0']` for a key.
 * - A leading `$` is the root only when followed by `.`, `[` or the end: `$schema` is the key
 *   `"$schema"`.
 * - `$` alone (the whole source state) is rejected with a hint to write `$.*`, so that a reset of
 *   everything is spelled out.
 * - A key never matches an array element and an index never matches an object key.
 * - Only plain objects and arrays are containers: a Date or Uint8Array held in the state is a leaf.
 *
 * @since 0.1.0
 */
import { Either, Schema } from "effect"

/**
 * One step that picks children of a node.
 *
 * @since 0.1.0
 */
export type Selector =
  | { readonly _tag: "Key"; readonly key: string }
  | { readonly _tag: "Index"; readonly index: number }
  | { readonly _tag: "Wildcard" }

/**
 * A selector applied to the children of the current nodes, or (`Descend`, written `..`) to the
 * current nodes and every node below them.
 *
 * @since 0.1.0
 */
export type Segment = Selector | { readonly _tag: "Descend"; readonly selector: Selector }

/**
 * A parsed path; `text` is kept for messages and printing.
 *
 * @since 0.1.0
 */
export interface StatePath {
  readonly text: string
  readonly segments: ReadonlyArray<Segment>
}

/**
 * One concrete location: object keys are strings, array indices numbers.
 *
 * @since 0.1.0
 */
export type Location = ReadonlyArray<string | number>

/**
 * A path that does not parse. `position` is the UTF-16 offset in `path` where parsing stopped.
 *
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as StatePath from "./StatePath.js" // internal module
 *
 * const result = StatePath.parse("a[0")
 * if (Either.isLeft(result)) console.error(result.left.message)
 * // Invalid state path: expected ']' to close the '[' at position 1, but the path ends here (at position 3)
 * //   a[0
 * //      ^
 * ```
 *
 * @since 0.1.0
 */
export class InvalidStatePath extends Schema.TaggedError<InvalidStatePath>()("InvalidStatePath", {
  path: Schema.String,
  position: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    // The caret must sit under the right character even after astral characters (one column,
    // two UTF-16 units) and control characters (replaced so that they do not break the line).
    const shown = Array.from(this.path, (ch) => (isControl(ch) ? "\uFFFD" : ch)).join("")
    const column = Array.from(this.path.slice(0, Math.max(0, this.position))).length
    return `Invalid state path: ${this.reason} (at position ${this.position})\n  ${shown}\n  ${" ".repeat(column)}^`
  }
}

const isControl = (ch: string): boolean => {
  const code = ch.codePointAt(0) ?? 0
  return code < 0x20 || (code >= 0x7f && code <= 0x9f)
}

// Sticky: the parser asks "is there a name exactly here", never scans ahead for one.
const NAME_AT = /[\p{L}_$][\p{L}\p{M}\p{Nd}_$-]*/uy
const NAME_PART_AT = /[\p{L}\p{M}\p{Nd}_$-]/uy
const WHOLE_NAME = /^[\p{L}_$][\p{L}\p{M}\p{Nd}_$-]*$/u

const nameAt = (text: string, at: number): string | undefined => {
  NAME_AT.lastIndex = at
  return NAME_AT.exec(text)?.[0]
}

const isNamePartAt = (text: string, at: number): boolean => {
  NAME_PART_AT.lastIndex = at
  return NAME_PART_AT.test(text)
}

const describeAt = (text: string, at: number): string => {
  const ch = String.fromCodePoint(text.codePointAt(at) ?? 0)
  if (isControl(ch) || ch.trim() === "") {
    return `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`
  }
  return `'${ch}'`
}

const SIMPLE_ESCAPES: ReadonlyMap<string, string> = new Map([
  ['"', '"'],
  ["'", "'"],
  ["\\", "\\"],
  ["/", "/"],
  ["b", "\b"],
  ["f", "\f"],
  ["n", "\n"],
  ["r", "\r"],
  ["t", "\t"]
])

const HEX4 = /^[0-9a-fA-F]{4}$/

type Step<A> = Either.Either<{ readonly value: A; readonly next: number }, InvalidStatePath>

/**
 * Parses a JSONPath expression relative to a source state.
 *
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as StatePath from "./StatePath.js" // internal module
 *
 * StatePath.parse("$..items[0].id")
 * // Either.right({ text: "$..items[0].id", segments: [
 * //   { _tag: "Descend", selector: { _tag: "Key", key: "items" } },
 * //   { _tag: "Index", index: 0 },
 * //   { _tag: "Key", key: "id" } ] })
 * Either.isLeft(StatePath.parse("a b")) // true: position 1, keys with spaces must be quoted
 * ```
 *
 * @since 0.1.0
 */
export const parse = (text: string): Either.Either<StatePath, InvalidStatePath> => {
  const fail = (position: number, reason: string) => Either.left(new InvalidStatePath({ path: text, position, reason }))
  if (text.length === 0) {
    return fail(0, "the path is empty; write a key such as `last_value` or `$.last_value`")
  }
  const segments: Array<Segment> = []
  let at = 0
  if (text[0] === "$" && !isNamePartAt(text, 1)) {
    at = 1
  } else if (text[0] === "." && text[1] !== ".") {
    return fail(0, "a path cannot start with a single '.'; write `a` or `$.a`")
  } else if (text[0] !== "[" && text[0] !== ".") {
    const first = nameOrWildcard(text, 0)
    if (first === undefined) return unexpected(text, 0)
    segments.push(first.value)
    at = first.next
  }
  while (at < text.length) {
    const ch = text[at]
    if (ch === "." && text[at + 1] === ".") {
      const after = at + 2
      if (text[after] === "[") {
        const bracket = parseBracket(text, after)
        if (Either.isLeft(bracket)) return Either.left(bracket.left)
        segments.push({ _tag: "Descend", selector: bracket.right.value })
        at = bracket.right.next
        continue
      }
      const selector = nameOrWildcard(text, after)
      if (selector === undefined) {
        return fail(after, `expected a key, '*' or '[' after '..'${found(text, after)}`)
      }
      segments.push({ _tag: "Descend", selector: selector.value })
      at = selector.next
    } else if (ch === ".") {
      const after = at + 1
      const selector = nameOrWildcard(text, after)
      if (selector === undefined)
        return fail(after, `expected a key or '*' after '.'${found(text, after)}${dotHint(text, after)}`)
      segments.push(selector.value)
      at = selector.next
    } else if (ch === "[") {
      const bracket = parseBracket(text, at)
      if (Either.isLeft(bracket)) return Either.left(bracket.left)
      segments.push(bracket.right.value)
      at = bracket.right.next
    } else {
      return unexpected(text, at)
    }
  }
  if (segments.length === 0) {
    return fail(text.length, "'$' alone is the whole source state; to reset every key write `$.*`")
  }
  return Either.right({ text, segments })
}

const found = (text: string, at: number): string =>
  at >= text.length ? ", but the path ends here" : `, found ${describeAt(text, at)}`

const dotHint = (text: string, at: number): string => {
  const ch = text[at]
  if (ch === undefined) return ""
  if ((ch >= "0" && ch <= "9") || ch === "-") return numberHint(text, at)
  if (ch === "'" || ch === '"') return "; quoted keys go in brackets: ['key']"
  if (ch === "[") return "; write a[0] rather than a.[0]"
  return "; other keys must be quoted: ['key']"
}

/** Suggests the bracket forms for a dotted name that starts with a digit or '-', like `a.0`. */
const numberHint = (text: string, at: number): string => {
  let end = at
  while (end < text.length && isNamePartAt(text, end)) end += (text.codePointAt(end) ?? 0) > 0xffff ? 2 : 1
  const token = text.slice(at, end)
  const asKey = `['${token}']`
  return /^-?[0-9]+$/.test(token)
    ? `; a key cannot start with a digit or '-': write [${token}] for an array element or ${asKey} for a key`
    : `; a key cannot start with a digit or '-': write ${asKey}`
}

const nameOrWildcard = (text: string, at: number): { readonly value: Selector; readonly next: number } | undefined => {
  if (text[at] === "*") return { value: { _tag: "Wildcard" }, next: at + 1 }
  const name = nameAt(text, at)
  return name === undefined ? undefined : { value: { _tag: "Key", key: name }, next: at + name.length }
}

const unexpected = (text: string, at: number): Either.Either<never, InvalidStatePath> => {
  const ch = text[at] ?? ""
  const reason =
    ch.trim() === "" && ch !== ""
      ? "unexpected whitespace; quote keys that contain spaces: ['key with spaces']"
      : ch === "]"
        ? "unexpected ']' without a matching '['"
        : (ch >= "0" && ch <= "9") || ch === "-"
          ? `unexpected ${describeAt(text, at)}${numberHint(text, at)}`
          : `unexpected ${describeAt(text, at)}; expected '.', '..' or '['; other keys must be quoted: ['key']`
  return Either.left(new InvalidStatePath({ path: text, position: at, reason }))
}

const parseBracket = (text: string, open: number): Step<Selector> => {
  const fail = (position: number, reason: string) => Either.left(new InvalidStatePath({ path: text, position, reason }))
  const at = open + 1
  const close = (value: Selector, next: number): Step<Selector> => {
    if (text[next] === "]") return Either.right({ value, next: next + 1 })
    const ch = text[next]
    const hint =
      ch === ":"
        ? "; slices such as [1:3] are not supported"
        : ch === ","
          ? "; unions are not supported: pass one --state-paths per path"
          : ""
    return fail(next, `expected ']' to close the '[' at position ${open}${found(text, next)}${hint}`)
  }
  const ch = text[at]
  if (ch === undefined) {
    return fail(at, "expected an index, '*' or a quoted key after '[', but the path ends here")
  }
  if (ch === "*") return close({ _tag: "Wildcard" }, at + 1)
  if (ch === "'" || ch === '"') {
    const quoted = parseQuoted(text, at)
    if (Either.isLeft(quoted)) return Either.left(quoted.left)
    return close({ _tag: "Key", key: quoted.right.value }, quoted.right.next)
  }
  if (ch === "-" || (ch >= "0" && ch <= "9")) {
    let end = ch === "-" ? at + 1 : at
    const digitsStart = end
    while (end < text.length && text[end]! >= "0" && text[end]! <= "9") end++
    if (end === digitsStart) return fail(end, `expected a digit after '-'${found(text, end)}`)
    const index = Number(text.slice(at, end))
    if (!Number.isSafeInteger(index)) return fail(at, "the index is too large")
    return close({ _tag: "Index", index: index === 0 ? 0 : index }, end)
  }
  if (ch === "?" || ch === "(") return fail(at, "filter and script expressions are not supported")
  if (ch === "]") return fail(at, "empty brackets: expected an index, '*' or a quoted key")
  const name = nameAt(text, at)
  if (name !== undefined) {
    return fail(at, `expected an index, '*' or a quoted key in brackets; for the key write ['${name}']`)
  }
  return fail(at, `expected an index, '*' or a quoted key in brackets, found ${describeAt(text, at)}`)
}

const parseQuoted = (text: string, open: number): Step<string> => {
  const quote = text[open]!
  const fail = (position: number, reason: string) => Either.left(new InvalidStatePath({ path: text, position, reason }))
  const parts: Array<string> = []
  let chunkStart = open + 1
  let at = open + 1
  while (at < text.length) {
    const ch = text[at]
    if (ch === quote) {
      parts.push(text.slice(chunkStart, at))
      return Either.right({ value: parts.join(""), next: at + 1 })
    }
    if (ch !== "\\") {
      at++
      continue
    }
    parts.push(text.slice(chunkStart, at))
    const escaped = text[at + 1]
    if (escaped === undefined) break
    const simple = SIMPLE_ESCAPES.get(escaped)
    if (simple !== undefined) {
      parts.push(simple)
      at += 2
    } else if (escaped === "u") {
      const hex = text.slice(at + 2, at + 6)
      if (!HEX4.test(hex)) return fail(at, "a \\u escape needs four hex digits, e.g. \\u00e9")
      parts.push(String.fromCharCode(Number.parseInt(hex, 16)))
      at += 6
    } else {
      return fail(at, `unknown escape \\${escaped}; write \\\\ for a backslash`)
    }
    chunkStart = at
  }
  return fail(open, `unterminated quoted key: no closing ${quote} for the quote opened here`)
}

// ---------------------------------------------------------------------------------------------
// Matching

/**
 * A node of the document. Nodes point to their parent instead of carrying their full location, so
 * that walking a deep document costs memory in its size, not in its size times its depth.
 */
interface Node {
  readonly value: unknown
  readonly parent: Node | undefined
  readonly key: string | number
  /** the position among its siblings (key order or index), which gives document order */
  readonly position: number
}

/** A node together with its materialized path of sibling positions, used to sort and compare. */
interface Placed {
  readonly node: Node
  readonly order: ReadonlyArray<number>
}

const rootNode = (value: unknown): Node => ({ value, parent: undefined, key: "", position: 0 })

const locationOf = (node: Node): Array<string | number> => {
  const out: Array<string | number> = []
  for (let at: Node | undefined = node; at?.parent !== undefined; at = at.parent) out.push(at.key)
  return out.reverse()
}

const orderOf = (node: Node): Array<number> => {
  const out: Array<number> = []
  for (let at: Node | undefined = node; at?.parent !== undefined; at = at.parent) out.push(at.position)
  return out.reverse()
}

const isPlainObject = (value: unknown): value is { readonly [k: string]: unknown } => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const isExcluded = (parent: Node, key: string, exclude: ReadonlySet<string>): boolean =>
  parent.parent === undefined && exclude.has(key)

const children = (node: Node, exclude: ReadonlySet<string>): Array<Node> => {
  const { value } = node
  if (Array.isArray(value)) return value.map((item: unknown, i) => ({ value: item, parent: node, key: i, position: i }))
  if (!isPlainObject(value)) return []
  const out: Array<Node> = []
  Object.keys(value).forEach((key, i) => {
    if (!isExcluded(node, key, exclude)) out.push({ value: value[key], parent: node, key, position: i })
  })
  return out
}

const select = (node: Node, selector: Selector, exclude: ReadonlySet<string>): Array<Node> => {
  const { value } = node
  switch (selector._tag) {
    case "Wildcard":
      return children(node, exclude)
    case "Key": {
      const { key } = selector
      if (!isPlainObject(value) || !Object.hasOwn(value, key) || isExcluded(node, key, exclude)) return []
      return [{ value: value[key], parent: node, key, position: Object.keys(value).indexOf(key) }]
    }
    case "Index": {
      if (!Array.isArray(value)) return []
      const index = selector.index < 0 ? value.length + selector.index : selector.index
      return index >= 0 && index < value.length
        ? [{ value: value[index], parent: node, key: index, position: index }]
        : []
    }
  }
}

const compareOrder = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!
    if (d !== 0) return d
  }
  return a.length - b.length
}

const isPrefix = (prefix: ReadonlyArray<number>, of: ReadonlyArray<number>): boolean =>
  prefix.length <= of.length && prefix.every((n, i) => of[i] === n)

/** Document order, each node once. */
const normalize = (nodes: ReadonlyArray<Node>): Array<Placed> => {
  const sorted = nodes.map((node) => ({ node, order: orderOf(node) })).sort((a, b) => compareOrder(a.order, b.order))
  return sorted.filter((placed, i) => i === 0 || compareOrder(sorted[i - 1]!.order, placed.order) !== 0)
}

/** Drops every node that lies below another one of the (normalized) list. */
const outermost = (placed: ReadonlyArray<Placed>): Array<Placed> => {
  const out: Array<Placed> = []
  for (const p of placed) {
    const last = out[out.length - 1]
    if (last === undefined || !isPrefix(last.order, p.order)) out.push(p)
  }
  return out
}

const descend = (starts: ReadonlyArray<Placed>, selector: Selector, exclude: ReadonlySet<string>): Array<Node> => {
  // A start below another start is visited from the outer one anyway; skipping it keeps chains
  // like `$..a..b` linear in the size of the document.
  const stack = outermost(starts)
    .map((p) => p.node)
    .reverse()
  const out: Array<Node> = []
  // An explicit stack rather than recursion: a deeply nested state must not overflow the call stack.
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    out.push(...select(node, selector, exclude))
    const below = children(node, exclude)
    for (let i = below.length - 1; i >= 0; i--) stack.push(below[i]!)
  }
  return out
}

const matchNodes = (path: StatePath, root: unknown, exclude: ReadonlySet<string>): Array<Placed> => {
  let current: Array<Placed> = [{ node: rootNode(root), order: [] }]
  for (const segment of path.segments) {
    if (current.length === 0) return current
    const next =
      segment._tag === "Descend"
        ? descend(current, segment.selector, exclude)
        : current.flatMap((p) => select(p.node, segment, exclude))
    current = normalize(next)
  }
  return current
}

/**
 * Every concrete location `path` matches in `root`, in document order (a location before the
 * locations below it; siblings in key / index order), each location once.
 *
 * `exclude` names top-level keys that are invisible to the path: neither matched nor entered by
 * `*` or `..`. dlt's `drop --state-paths` excludes `resources` of the source state.
 *
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as StatePath from "./StatePath.js" // internal module
 *
 * const path = Either.getOrThrow(StatePath.parse("$..id"))
 * StatePath.matches(path, { a: [{ id: 1 }], resources: { r: { id: 2 } } }, { exclude: ["resources"] })
 * // [["a", 0, "id"]]
 * ```
 *
 * @since 0.1.0
 */
export const matches = (
  path: StatePath,
  root: unknown,
  options?: { readonly exclude?: ReadonlyArray<string> }
): ReadonlyArray<Location> => matchNodes(path, root, new Set(options?.exclude ?? [])).map((p) => locationOf(p.node))

type Trie = Map<string | number, Trie | true>

const prune = (value: unknown, trie: Trie): unknown => {
  if (Array.isArray(value)) {
    // Indices in the trie refer to the original array, so filtering removes them all at once,
    // which is the same as deleting from the highest index down.
    const out: Array<unknown> = []
    for (let i = 0; i < value.length; i++) {
      const below = trie.get(i)
      if (below === undefined) out.push(value[i])
      else if (below !== true) out.push(prune(value[i], below))
    }
    return out
  }
  if (!isPlainObject(value)) return value
  // fromEntries defines own properties, so a `__proto__` key stays a key.
  return Object.fromEntries(
    Object.keys(value).flatMap((key) => {
      const below = trie.get(key)
      if (below === true) return []
      return [[key, below === undefined ? value[key] : prune(value[key], below)] as const]
    })
  )
}

/**
 * Removes every location matched by any of `paths` (all matched against the original `root`).
 * `root` is never mutated; untouched subtrees are shared between `root` and `result`. `removed`
 * lists what was removed, formatted with {@link format}, in document order; a location inside an
 * already removed one is not listed again.
 *
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as StatePath from "./StatePath.js" // internal module
 *
 * const paths = ["$..cursor", "pages[-1]"].map((p) => Either.getOrThrow(StatePath.parse(p)))
 * StatePath.remove(paths, { pages: [1, 2, 3], cursor: "x", resources: { r: { cursor: "y" } } }, { exclude: ["resources"] })
 * // { result: { pages: [1, 2], resources: { r: { cursor: "y" } } }, removed: ["pages[2]", "cursor"] }
 * ```
 *
 * @since 0.1.0
 */
export const remove = (
  paths: ReadonlyArray<StatePath>,
  root: { readonly [k: string]: unknown },
  options?: { readonly exclude?: ReadonlyArray<string> }
): { readonly result: { readonly [k: string]: unknown }; readonly removed: ReadonlyArray<string> } => {
  const exclude = new Set(options?.exclude ?? [])
  const top = rootNode(root)
  const found = paths.flatMap((path) =>
    // Removing the root itself means removing everything the path may see.
    matchNodes(path, root, exclude).flatMap((p) => (p.node.parent === undefined ? children(top, exclude) : [p.node]))
  )
  const locations = outermost(normalize(found)).map((p) => locationOf(p.node))
  if (locations.length === 0) return { result: root, removed: [] }
  const trie: Trie = new Map()
  for (const location of locations) {
    let level = trie
    location.forEach((key, i) => {
      if (i === location.length - 1) {
        level.set(key, true)
        return
      }
      const below = level.get(key)
      // `locations` has no location under another, so `below` is never `true` here.
      const next: Trie = below instanceof Map ? below : new Map()
      level.set(key, next)
      level = next
    })
  }
  const pruned = prune(root, trie)
  return { result: isPlainObject(pruned) ? pruned : {}, removed: locations.map(format) }
}

/**
 * Prints a location so that {@link parse} reads it back to the same location: names after dots,
 * other keys JSON-quoted in brackets, indices in brackets; `[]` is `$`.
 *
 * @example
 * ```ts
 * import * as StatePath from "./StatePath.js" // internal module
 *
 * StatePath.format(["a", "b", 0, "weird key"]) // 'a.b[0]["weird key"]'
 * ```
 *
 * @since 0.1.0
 */
export const format = (location: Location): string => {
  if (location.length === 0) return "$"
  return location
    .map((key, i) => {
      if (typeof key === "number") return `[${key}]`
      // A leading `$...` could read as the root, so it is quoted at the start.
      if (WHOLE_NAME.test(key) && !(i === 0 && key.startsWith("$"))) return i === 0 ? key : `.${key}`
      return `[${JSON.stringify(key)}]`
    })
    .join("")
}
