/**
 * Spawns the soak's child run (soak/child.ts) and follows its stdout line by line.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NodePath from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

export const REPO_ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")
export const CHILD = NodePath.join(REPO_ROOT, "soak", "child.ts")

export interface ChildRun {
  readonly child: ChildProcess
  readonly pid: number
  /** every stdout line so far */
  readonly lines: Array<string>
  readonly stderr: () => string
  /** resolves with the first line starting with `prefix` (seen before or later); rejects when the process exits first or on timeout */
  readonly waitFor: (prefix: string, timeoutMs: number) => Promise<string>
  /** resolves once the process has exited and its stdout is drained */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly hasExited: () => boolean
}

/** `node --import tsx soak/child.ts --key=value ...` */
export const spawnChild = (args: Readonly<Record<string, string | number>>): ChildRun => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", CHILD, ...Object.entries(args).map(([key, value]) => `--${key}=${value}`)],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_OPTIONS: "" } }
  )
  if (child.pid === undefined) throw new Error(`could not spawn ${CHILD}`)
  const lines: Array<string> = []
  const waiters: Array<{ readonly prefix: string; readonly resolve: (line: string) => void }> = []
  let stderr = ""
  let done = false
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line)
    for (const waiter of waiters.filter((w) => line.startsWith(w.prefix))) {
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve(line)
    }
  })
  child.stderr!.on("data", (data: Buffer) => {
    stderr += data.toString("utf8")
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close': exited AND stdout drained, so `lines` is complete
    child.on("close", (code, signal) => {
      done = true
      resolve({ code, signal })
    })
  })
  const waitFor = (prefix: string, timeoutMs: number) => {
    const seen = lines.find((line) => line.startsWith(prefix))
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`child ${child.pid}: no "${prefix}" line within ${timeoutMs} ms; stderr: ${stderr}`)),
        timeoutMs
      )
      waiters.push({
        prefix,
        resolve: (line) => {
          clearTimeout(timer)
          resolve(line)
        }
      })
      void exited.then(({ code, signal }) => {
        clearTimeout(timer)
        reject(
          new Error(
            `child ${child.pid} exited (code ${code}, signal ${signal}) before a "${prefix}" line; stdout: ${lines.join(" | ")}; stderr: ${stderr.slice(0, 2000)}`
          )
        )
      })
    })
  }
  return { child, pid: child.pid, lines, stderr: () => stderr, waitFor, exited, hasExited: () => done }
}

/** the `OUTCOME <tag> <json>` line of a finished child */
export const outcomeOf = (run: ChildRun): { readonly tag: string; readonly detail: string } => {
  const line = run.lines.find((l) => l.startsWith("OUTCOME "))
  if (line === undefined) return { tag: "NONE", detail: run.stderr().slice(0, 2000) }
  const rest = line.slice("OUTCOME ".length)
  const space = rest.indexOf(" ")
  return space < 0 ? { tag: rest, detail: "" } : { tag: rest.slice(0, space), detail: rest.slice(space + 1) }
}
