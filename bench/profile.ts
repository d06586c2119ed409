/**
 * Summarizes V8 CPU profiles (.cpuprofile, as written by `node --cpu-prof`): the functions with the
 * most self time, the files with the most self time, and the pipestate (src/) functions with the most
 * inclusive time.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/pipestate-prof --import tsx bench/main.ts --only "sqlite load" --side pipestate
 *   npx tsx bench/profile.ts /tmp/pipestate-prof            (the newest profile in the dir, or a file)
 *   npx tsx bench/profile.ts /tmp/pipestate-prof --top 40
 */
import * as NodeFs from "node:fs"
import { SourceMap } from "node:module"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const args = process.argv.slice(2)
const topAt = args.indexOf("--top")
const top = topAt === -1 ? 25 : Number(args[topAt + 1])
const target = args.find((a, i) => !a.startsWith("--") && (topAt === -1 || i !== topAt + 1)) ?? "/tmp/pipestate-prof"

const pickFile = (path: string): string => {
  if (!NodeFs.statSync(path).isDirectory()) return path
  const files = NodeFs.readdirSync(path)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => NodePath.join(path, f))
    .sort((a, b) => NodeFs.statSync(b).mtimeMs - NodeFs.statSync(a).mtimeMs)
  if (files.length === 0) throw new Error(`no .cpuprofile in ${path}`)
  // one run writes a profile per thread (tsx's loader runs in a worker): take the largest of the
  // newest run's, the main thread's
  const newest = NodeFs.statSync(files[0]!).mtimeMs
  return files
    .filter((f) => newest - NodeFs.statSync(f).mtimeMs < 10_000)
    .sort((a, b) => NodeFs.statSync(b).size - NodeFs.statSync(a).size)[0]!
}

const root = NodePath.resolve(NodePath.dirname(new URL(import.meta.url).pathname), "..")

const shortUrl = (url: string): string => {
  if (url === "") return ""
  let path = url.startsWith("file://") ? decodeURIComponent(new URL(url).pathname) : url
  if (path.startsWith(`${root}/`)) path = path.slice(root.length + 1)
  const nm = path.lastIndexOf("node_modules/")
  return nm === -1 ? path : path.slice(nm + "node_modules/".length)
}

const file = pickFile(target)
const profile = JSON.parse(NodeFs.readFileSync(file, "utf8")) as CpuProfile
const profileNodes = profile.nodes
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

// ---------------------------------------------------------------------------------------------------
// tsx runs TypeScript transformed by esbuild with whitespace minified (a module is one line), so the
// profile's positions are in that code. tsx caches each transform with its source map in
// <tmpdir>/tsx-<uid>/; the entry of the version that ran is the one whose code has each named
// frame's function name at the frame's position. Positions map back to the .ts line through it.
// ---------------------------------------------------------------------------------------------------

interface Transform {
  readonly code: string
  readonly map: SourceMap
}

const tsxCache = (): Map<string, Array<Transform>> => {
  const bySource = new Map<string, Array<Transform>>()
  const dir = NodePath.join(NodeOs.tmpdir(), `tsx-${NodeOs.userInfo().uid}`)
  if (!NodeFs.existsSync(dir)) return bySource
  for (const name of NodeFs.readdirSync(dir)) {
    try {
      const entry = JSON.parse(NodeFs.readFileSync(NodePath.join(dir, name), "utf8")) as {
        code?: unknown
        map?: { sources?: ReadonlyArray<string> }
      }
      const source = entry.map?.sources?.[0]
      if (typeof entry.code !== "string" || typeof source !== "string") continue
      const list = bySource.get(source) ?? []
      list.push({ code: entry.code, map: new SourceMap(entry.map as ConstructorParameters<typeof SourceMap>[0]) })
      bySource.set(source, list)
    } catch {
      // not a transform entry
    }
  }
  return bySource
}

const transforms = tsxCache()

// where V8 places a function: its parameter list (arrows, methods) or the `function` keyword
const FUNCTION_START =
  /^(?:async\s*)?(?:\([^()]*(?:\([^()]*\)[^()]*)*\)\s*(?::[^=]*)?=>|[A-Za-z_$][\w$]*\s*=>|function\b|\()/
const chosen = new Map<string, Transform | null>()

const transformFor = (url: string): Transform | null => {
  if (!url.startsWith("file://") || !url.endsWith(".ts")) return null
  const cached = chosen.get(url)
  if (cached !== undefined) return cached
  const path = decodeURIComponent(new URL(url).pathname)
  const candidates = transforms.get(path) ?? []
  const frames = profileNodes.filter((n) => n.callFrame.url === url && n.callFrame.lineNumber === 0)
  let best: Transform | null = null
  let bestScore = -1
  for (const candidate of candidates) {
    // a named frame must find its name at its position; any frame must find the start of a function
    let score = 0
    for (const { callFrame: f } of frames) {
      if (f.functionName !== "" && candidate.code.startsWith(f.functionName, f.columnNumber)) score += 10
      else if (FUNCTION_START.test(candidate.code.slice(f.columnNumber, f.columnNumber + 200))) score += 1
    }
    if (score > bestScore) {
      best = candidate
      bestScore = score
    }
  }
  chosen.set(url, best)
  return best
}

const sourceLines = new Map<string, ReadonlyArray<string>>()
const sourceLine = (path: string, line: number): string => {
  let lines = sourceLines.get(path)
  if (lines === undefined) {
    lines = NodeFs.existsSync(path) ? NodeFs.readFileSync(path, "utf8").split("\n") : []
    sourceLines.set(path, lines)
  }
  return (lines[line] ?? "").trim()
}

const keyOf = (frame: CallFrame): string => {
  const name = frame.functionName || "(anonymous)"
  if (frame.url === "") return name
  const transform = transformFor(frame.url)
  if (transform !== null) {
    const entry = transform.map.findEntry(frame.lineNumber, frame.columnNumber) as {
      originalLine?: number
      originalSource?: string
    }
    if (entry.originalLine !== undefined) {
      const path = decodeURIComponent(new URL(frame.url).pathname)
      // a position can map to the comment above a function: show the first line of code from there
      let line = entry.originalLine
      while (/^(?:$|\/\/|\/\*|\*|\}\)?$)/.test(sourceLine(path, line)) && line < entry.originalLine + 60) line++
      const text = sourceLine(path, line).slice(0, 70)
      return `${name}  ${shortUrl(frame.url)}:${line + 1}  ${text}`
    }
  }
  return `${name}  ${shortUrl(frame.url)}:${frame.lineNumber + 1}`
}

const self = new Map<string, number>()
const inclusive = new Map<string, number>()
const perFile = new Map<string, number>()
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000 // ms spent in this sample until the next one
  total += dt
  const node = byId.get(profile.samples[i]!)!
  const key = keyOf(node.callFrame)
  self.set(key, (self.get(key) ?? 0) + dt)
  const fileKey = shortUrl(node.callFrame.url) || node.callFrame.functionName
  perFile.set(fileKey, (perFile.get(fileKey) ?? 0) + dt)
  const seen = new Set<string>()
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const k = keyOf(byId.get(id)!.callFrame)
    if (seen.has(k)) continue
    seen.add(k)
    inclusive.set(k, (inclusive.get(k) ?? 0) + dt)
  }
}

const print = (title: string, entries: Map<string, number>, filter: (key: string) => boolean = () => true) => {
  console.log(`\n${title}`)
  const rows = [...entries.entries()]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
  for (const [k, ms] of rows) {
    console.log(`${ms.toFixed(0).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${k}`)
  }
}

console.log(`${file}: ${(total / 1000).toFixed(1)} s sampled`)
print(`top ${top} functions by self time`, self)
print(`top ${top} files by self time`, perFile)
print(`top ${top} pipestate (src/) functions by inclusive time`, inclusive, (k) => / src\//.test(k))
