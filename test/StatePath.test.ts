import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fc from "fast-check"
import { format, InvalidStatePath, matches, parse, remove, type StatePath } from "../src/internal/state/StatePath.js"

const sample = {
  last_value: 10,
  cursor: { page: 3, token: "abc" },
  items: [{ id: 1, name: "a" }, { id: 2, tags: [{ id: 9 }] }, { id: 3 }],
  "key with spaces": { b: 1 },
  nested: { deep: { b: 2, list: [1, 2, 3] } },
  b: 0,
  resources: { players: { b: 42, archives: ["x"] } }
}

const ok = (text: string): StatePath => {
  const result = parse(text)
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

const bad = (text: string): InvalidStatePath => {
  const result = parse(text)
  if (Either.isRight(result)) throw new Error(`expected ${JSON.stringify(text)} to be rejected`)
  return result.left
}

const at = (text: string, root: unknown = sample, exclude: ReadonlyArray<string> = ["resources"]) =>
  matches(ok(text), root, { exclude })

const deepFreeze = <A>(value: A): A => {
  if (typeof value === "object" && value !== null) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
    Object.freeze(value)
  }
  return value
}

describe("parse", () => {
  it("reads each syntax form", () => {
    expect(ok("a.b").segments).toEqual([
      { _tag: "Key", key: "a" },
      { _tag: "Key", key: "b" }
    ])
    expect(ok("$.a").segments).toEqual([{ _tag: "Key", key: "a" }])
    expect(ok("a.*.b").segments).toEqual([{ _tag: "Key", key: "a" }, { _tag: "Wildcard" }, { _tag: "Key", key: "b" }])
    expect(ok("a[0][-1][*]").segments).toEqual([
      { _tag: "Key", key: "a" },
      { _tag: "Index", index: 0 },
      { _tag: "Index", index: -1 },
      { _tag: "Wildcard" }
    ])
    expect(ok(`a['key with spaces']["k"]`).segments).toEqual([
      { _tag: "Key", key: "a" },
      { _tag: "Key", key: "key with spaces" },
      { _tag: "Key", key: "k" }
    ])
    expect(ok("$..items[0].id").segments).toEqual([
      { _tag: "Descend", selector: { _tag: "Key", key: "items" } },
      { _tag: "Index", index: 0 },
      { _tag: "Key", key: "id" }
    ])
    expect(ok("a..[1]").segments).toEqual([
      { _tag: "Key", key: "a" },
      { _tag: "Descend", selector: { _tag: "Index", index: 1 } }
    ])
    expect(ok("..*").segments).toEqual([{ _tag: "Descend", selector: { _tag: "Wildcard" } }])
    expect(ok("[0]").segments).toEqual([{ _tag: "Index", index: 0 }])
    expect(ok("*").segments).toEqual([{ _tag: "Wildcard" }])
  })

  it("reads names with digits, '_', '-', '$' and non-ASCII letters", () => {
    expect(ok("_a1-b$.$ref.ключ").segments).toEqual([
      { _tag: "Key", key: "_a1-b$" },
      { _tag: "Key", key: "$ref" },
      { _tag: "Key", key: "ключ" }
    ])
    // `$` followed by a name character is a key, not the root
    expect(ok("$schema").segments).toEqual([{ _tag: "Key", key: "$schema" }])
  })

  it("reads escapes in quoted keys", () => {
    expect(ok(String.raw`['it\'s']["a\"b\\c\n\u00e9"]`).segments).toEqual([
      { _tag: "Key", key: "it's" },
      { _tag: "Key", key: 'a"b\\c\né' }
    ])
    expect(ok(`["it's"]['say "hi"']`).segments).toEqual([
      { _tag: "Key", key: "it's" },
      { _tag: "Key", key: 'say "hi"' }
    ])
  })

  it("keeps the text", () => {
    expect(ok("$..b").text).toBe("$..b")
  })

  it.each([
    ["", 0, "empty"],
    ["a..", 3, "after '..'"],
    ["a[", 2, "after '['"],
    ["a[x]", 2, "['x']"],
    ["a.", 2, "after '.'"],
    ["[0", 2, "expected ']'"],
    ["a['unterminated", 2, "unterminated"],
    ['a["unterminated\\"', 2, "unterminated"],
    ["a b", 1, "whitespace"],
    ["$", 1, "$.*"],
    [".a", 0, "single '.'"],
    ["a.0", 2, "cannot start with a digit"],
    ["a.-1", 2, "write [-1] for an array element or ['-1'] for a key"],
    ["0", 0, "cannot start with a digit"],
    ["a.0b", 2, "write ['0b']"],
    ["a.[0]", 2, "a[0]"],
    ["a.'b'", 2, "in brackets"],
    ["a[1:2]", 3, "slices"],
    ["a[0,1]", 3, "unions"],
    ["a[?(@.x)]", 2, "filter"],
    ["a[]", 2, "empty brackets"],
    ["a[-]", 3, "digit after '-'"],
    ["a[99999999999999999999]", 2, "too large"],
    ["a]", 1, "without a matching '['"],
    ["$*", 1, "expected '.'"],
    ["a*", 1, "expected '.'"],
    ["a....b", 3, "after '..'"],
    ["a['x'", 5, "expected ']'"],
    ["a['\\q']", 3, "unknown escape"],
    ["a['\\u12']", 3, "four hex digits"],
    ["a.b c", 3, "whitespace"]
  ] as const)("rejects %j at position %i", (text, position, reason) => {
    const error = bad(text)
    expect(error).toBeInstanceOf(InvalidStatePath)
    expect(error._tag).toBe("InvalidStatePath")
    expect(error.path).toBe(text)
    expect(error.position).toBe(position)
    expect(error.reason).toContain(reason)
  })

  it("shows the path with a caret under the position", () => {
    const error = bad("items[x]")
    expect(error.message.split("\n")).toEqual([
      "Invalid state path: expected an index, '*' or a quoted key in brackets; for the key write ['x'] (at position 6)",
      "  items[x]",
      "        ^"
    ])
  })

  it("aligns the caret after astral characters and hides control characters", () => {
    const error = bad("['😀'] x")
    // the space after `]`: 😀 is two UTF-16 units but one column
    expect(error.position).toBe(6)
    const lines = error.message.split("\n")
    expect(lines[2]!.indexOf("^")).toBe(2 + Array.from("['😀']").length)
    expect(bad("a\nb").message.split("\n")).toHaveLength(3)
  })
})

describe("matches", () => {
  it("follows keys", () => {
    expect(at("cursor.page")).toEqual([["cursor", "page"]])
    expect(at("$.cursor.page")).toEqual([["cursor", "page"]])
    expect(at("cursor.missing")).toEqual([])
    expect(at("last_value.x")).toEqual([])
  })

  it("expands wildcards over objects and arrays", () => {
    expect(at("cursor.*")).toEqual([
      ["cursor", "page"],
      ["cursor", "token"]
    ])
    expect(at("items.*.id")).toEqual([
      ["items", 0, "id"],
      ["items", 1, "id"],
      ["items", 2, "id"]
    ])
    expect(at("items[*].name")).toEqual([["items", 0, "name"]])
  })

  it("indexes arrays from either end, and never objects", () => {
    expect(at("items[0].id")).toEqual([["items", 0, "id"]])
    expect(at("items[-1]")).toEqual([["items", 2]])
    expect(at("items[-3]")).toEqual([["items", 0]])
    expect(at("items[3]")).toEqual([])
    expect(at("items[-4]")).toEqual([])
    expect(at("cursor[0]")).toEqual([])
    expect(matches(ok("['0']"), ["a"])).toEqual([])
  })

  it("reads quoted keys", () => {
    expect(at("['key with spaces'].b")).toEqual([["key with spaces", "b"]])
    expect(at(`$["key with spaces"]["b"]`)).toEqual([["key with spaces", "b"]])
  })

  it("descends recursively, in document order", () => {
    expect(at("$..b")).toEqual([["key with spaces", "b"], ["nested", "deep", "b"], ["b"]])
    expect(at("nested..b")).toEqual([["nested", "deep", "b"]])
    expect(at("$..id")).toEqual([
      ["items", 0, "id"],
      ["items", 1, "id"],
      ["items", 1, "tags", 0, "id"],
      ["items", 2, "id"]
    ])
    expect(at("$..tags[0].id")).toEqual([["items", 1, "tags", 0, "id"]])
    expect(at("$..items[0].id")).toEqual([["items", 0, "id"]])
    expect(at("nested..[-1]")).toEqual([["nested", "deep", "list", 2]])
  })

  it("lists a nested match after the one that contains it, each once", () => {
    const doc = { a: { a: { b: 1 }, b: 2 } }
    expect(matches(ok("$..a"), doc)).toEqual([["a"], ["a", "a"]])
    expect(matches(ok("$..a..b"), doc)).toEqual([
      ["a", "a", "b"],
      ["a", "b"]
    ])
    expect(matches(ok("$..*..*"), { x: { y: { z: 1 } } })).toEqual([
      ["x", "y"],
      ["x", "y", "z"]
    ])
  })

  it("never sees excluded top-level keys", () => {
    expect(at("resources")).toEqual([])
    expect(at("resources.players.b")).toEqual([])
    expect(at("*")).toEqual([["last_value"], ["cursor"], ["items"], ["key with spaces"], ["nested"], ["b"]])
    expect(at("$..archives")).toEqual([])
    expect(at("$..b")).not.toContainEqual(["resources", "players", "b"])
    // only at the top level
    expect(matches(ok("x.resources"), { x: { resources: 1 } }, { exclude: ["resources"] })).toEqual([
      ["x", "resources"]
    ])
    // without exclude everything is visible
    expect(at("$..archives", sample, [])).toEqual([["resources", "players", "archives"]])
  })

  it("treats non-plain objects as leaves and ignores inherited keys", () => {
    const doc = { d: new Date(0), bytes: new Uint8Array([1, 2]), o: {} }
    expect(matches(ok("$..*"), doc)).toEqual([["d"], ["bytes"], ["o"]])
    expect(matches(ok("o.constructor"), doc)).toEqual([])
    expect(matches(ok("o.toString"), doc)).toEqual([])
  })

  it("matches nothing in a scalar root", () => {
    expect(matches(ok("a"), 3)).toEqual([])
    expect(matches(ok("$..a"), null)).toEqual([])
  })

  it("walks a very deep document without overflowing", () => {
    let doc: unknown = { x: 1 }
    for (let i = 0; i < 20_000; i++) doc = [doc]
    expect(matches(ok("$..x"), { root: doc })).toHaveLength(1)
  })
})

describe("remove", () => {
  it("removes keys and array elements and lists what it removed", () => {
    const { removed, result } = remove([ok("cursor.token"), ok("items[0]"), ok("items[-1]")], sample, {
      exclude: ["resources"]
    })
    expect(removed).toEqual(["cursor.token", "items[0]", "items[2]"])
    expect(result.cursor).toEqual({ page: 3 })
    expect(result.items).toEqual([{ id: 2, tags: [{ id: 9 }] }])
    expect(result.resources).toBe(sample.resources)
  })

  it("matches every path against the original document", () => {
    // items[0] and items[1] are both the original elements, not items[0] twice
    const { result } = remove([ok("items[0]"), ok("items[1]")], sample)
    expect(result.items).toEqual([{ id: 3 }])
  })

  it("does not list a location inside one already removed", () => {
    const { removed, result } = remove([ok("$..b"), ok("nested")], sample, { exclude: ["resources"] })
    expect(removed).toEqual(['["key with spaces"].b', "nested", "b"])
    expect(result).toEqual({
      last_value: 10,
      cursor: sample.cursor,
      items: sample.items,
      "key with spaces": {},
      resources: sample.resources
    })
  })

  it("removes every element a wildcard matches", () => {
    const { result, removed } = remove([ok("items[*].id")], sample)
    expect(result.items).toEqual([{ name: "a" }, { tags: [{ id: 9 }] }, {}])
    expect(removed).toEqual(["items[0].id", "items[1].id", "items[2].id"])
  })

  it("keeps excluded keys for `*` and `$..b`", () => {
    const all = remove([ok("*")], sample, { exclude: ["resources"] })
    expect(all.result).toEqual({ resources: sample.resources })
    const bs = remove([ok("$..b")], sample, { exclude: ["resources"] })
    expect(bs.result.resources).toEqual({ players: { b: 42, archives: ["x"] } })
    expect(bs.removed).not.toContain("resources.players.b")
  })

  it("never mutates its input", () => {
    const input = deepFreeze(structuredClone(sample))
    const copy = structuredClone(sample)
    const { result } = remove([ok("$..b"), ok("items[-1]"), ok("items[0].id"), ok("cursor.*")], input)
    expect(input).toEqual(copy)
    expect(result).not.toBe(input)
    expect(result.items).toEqual([{ name: "a" }, { id: 2, tags: [{ id: 9 }] }])
  })

  it("returns the input itself when nothing matches", () => {
    const { result, removed } = remove([ok("nope")], sample)
    expect(result).toBe(sample)
    expect(removed).toEqual([])
  })

  it("keeps a `__proto__` key a plain key", () => {
    const input: { [k: string]: unknown } = JSON.parse('{"__proto__": {"a": 1, "b": 2}, "c": 3}')
    const { result } = remove([ok("['__proto__'].a")], input)
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype)
    expect(Object.keys(result)).toEqual(["__proto__", "c"])
    expect(Object.getOwnPropertyDescriptor(result, "__proto__")?.value).toEqual({ b: 2 })
  })
})

describe("format", () => {
  it("prints names, quoted keys and indices", () => {
    expect(format(["a", "b", 0, "weird key"])).toBe('a.b[0]["weird key"]')
    expect(format([0, "a"])).toBe("[0].a")
    expect(format(["0", "-x", "$ref"])).toBe('["0"]["-x"].$ref')
    expect(format(["$"])).toBe('["$"]')
    expect(format(["$ref"])).toBe('["$ref"]')
    expect(format([])).toBe("$")
  })

  it("prints what parse reads back to the same location", () => {
    const key = fc.oneof(fc.string(), fc.fullUnicodeString(), fc.string16bits(), fc.constantFrom("$", "a", "a-b", "é"))
    fc.assert(
      fc.property(fc.array(fc.oneof(key, fc.nat()), { minLength: 1, maxLength: 6 }), (location) => {
        const segments = location.map((k) =>
          typeof k === "number" ? { _tag: "Index", index: k } : { _tag: "Key", key: k }
        )
        expect(ok(format(location)).segments).toEqual(segments)
      }),
      { numRuns: 2_000 }
    )
  })
})

describe("fuzz", () => {
  const alphabet = [..."$.[]*'\"0123456789abcdefghijklmnopqrstuvwxyz-_\\ "]
  const pathLike = fc.stringOf(fc.constantFrom(...alphabet), { maxLength: 24 })

  // speed is measured by `npm run bench`, never asserted here: a loaded machine would fail it by chance
  it("parse returns a path or an InvalidStatePath for any string", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.fullUnicodeString(), fc.string16bits(), pathLike, pathLike), (text) => {
        const result = parse(text)
        if (Either.isLeft(result)) {
          expect(result.left).toBeInstanceOf(InvalidStatePath)
          expect(result.left.position).toBeGreaterThanOrEqual(0)
          expect(result.left.position).toBeLessThanOrEqual(text.length)
          expect(typeof result.left.message).toBe("string")
        } else {
          expect(result.right.text).toBe(text)
          expect(result.right.segments.length).toBeGreaterThan(0)
        }
      }),
      { numRuns: 12_000 }
    )
  })

  it("remove never throws, never mutates, and removes exactly what matches", () => {
    const keyName = fc.constantFrom("a", "b", "c", "resources", "__proto__", "0")
    const smallJson = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.jsonValue({ maxDepth: 1 }),
        fc.array(tie("value"), { maxLength: 4 }),
        fc.dictionary(keyName, tie("value"), { maxKeys: 4 })
      )
    })).value
    const root = fc.oneof(
      fc.dictionary(keyName, smallJson, { maxKeys: 5 }),
      fc.object({ maxDepth: 3 }),
      fc.jsonValue({ maxDepth: 4 }).filter((v): v is { [k: string]: fc.JsonValue } => {
        return typeof v === "object" && v !== null && !Array.isArray(v)
      })
    )
    const pathText = fc.oneof(
      pathLike,
      fc
        .array(
          fc.oneof(
            keyName.map((k) => `.${k}`),
            keyName.map((k) => `..${k}`),
            keyName.map((k) => `[${JSON.stringify(k)}]`),
            fc.integer({ min: -3, max: 3 }).map((i) => `[${i}]`),
            fc.constantFrom(".*", "[*]", "..*", "..[0]")
          ),
          { minLength: 1, maxLength: 4 }
        )
        .map((steps) => `$${steps.join("")}`)
    )
    fc.assert(
      fc.property(root, fc.array(pathText, { maxLength: 3 }), fc.boolean(), (input, texts, excludeResources) => {
        const paths = texts.map(parse).flatMap((r) => (Either.isRight(r) ? [r.right] : []))
        const before = structuredClone(input)
        deepFreeze(input)
        const options = { exclude: excludeResources ? ["resources"] : [] }
        const { result, removed } = remove(paths, input, options)
        expect(input).toEqual(before)
        for (const text of removed) {
          const location = matches(ok(text), input, options)
          expect(location).toHaveLength(1)
        }
        for (const path of paths) {
          // without indices, removing is final: nothing the path matched can reappear
          if (JSON.stringify(path.segments).includes("Index")) continue
          expect(matches(path, result, options)).toEqual([])
        }
        if (excludeResources && Object.hasOwn(input, "resources")) {
          expect(result.resources).toBe(input.resources)
        }
      }),
      { numRuns: 3_000 }
    )
  })
})
