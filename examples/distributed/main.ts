/**
 * `npm run example:distributed`: one source of 8 resources, decomposed into 8 groups, run by 2
 * runner processes on loopback (ports 34431 and 34432) and a driver, all sharing one PostgreSQL
 * (PIPESTATE_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test) for the cluster's
 * storage (schema `pipestate_cluster_example`) and the data (dataset `shop_distributed_example`).
 * Prints each group's summary and which runner ran it; then runs the same run id again (nothing
 * is loaded), stops the runners and drops the cluster schema and the dataset.
 *
 * On several machines, start `runner.ts` on each (its own --host/--port, the same --url and
 * --schema) and `driver.ts` anywhere: see README "Parallel and distributed runs".
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import pg from "pg"
import { DEFAULT_URL, parseArgs } from "./args.js"

const here = NodePath.dirname(fileURLToPath(import.meta.url))
const args = parseArgs(process.argv.slice(2))
const url = DEFAULT_URL
// --name=<suffix> and --ports=<a,b> let several copies run side by side (the test does)
const suffix = args.get("name") ?? "example"
const schema = `pipestate_cluster_${suffix}`
const dataset = `shop_distributed_${suffix}`
const ports = (args.get("ports") ?? "34431,34432").split(",").map(Number)
const rows = 10_000
const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pipestate-distributed-"))
const common = [`--url=${url}`, `--schema=${schema}`, `--dataset=${dataset}`, "--resources=8", `--rows=${rows}`]

const sql = async (text: string): Promise<ReadonlyArray<Record<string, unknown>>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text)).rows
  } finally {
    await client.end()
  }
}
const loads = async () => Number((await sql(`SELECT count(*) AS n FROM "${dataset}"._dlt_loads`))[0]?.n)

interface Proc {
  readonly child: ChildProcess
  readonly lines: Array<string>
  readonly waitFor: (prefix: string, ms: number) => Promise<string>
}

const start = (name: string, script: string, args: ReadonlyArray<string>): Proc => {
  const child = spawn(process.execPath, ["--import", "tsx", NodePath.join(here, script), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" }
  })
  const lines: Array<string> = []
  let stderr = ""
  createInterface({ input: child.stdout! }).on("line", (line) => lines.push(line))
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString("utf8")
  })
  const waitFor = (prefix: string, ms: number) =>
    new Promise<string>((resolve, reject) => {
      const deadline = Date.now() + ms
      const poll = setInterval(() => {
        const line = lines.find((l) => l.startsWith(prefix))
        if (line !== undefined) {
          clearInterval(poll)
          resolve(line)
        } else if (child.exitCode !== null || Date.now() > deadline) {
          clearInterval(poll)
          reject(new Error(`${name}: no "${prefix}" (exit ${child.exitCode}); stderr: ${stderr.slice(-2000)}`))
        }
      }, 50)
    })
  return { child, lines, waitFor }
}

const runners: Array<Proc> = []
const stopAll = () => {
  for (const r of runners) if (r.child.exitCode === null) r.child.kill("SIGTERM")
}
process.on("exit", stopAll)

try {
  await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; DROP SCHEMA IF EXISTS "${dataset}" CASCADE`)
  for (const port of ports) {
    const runner = start(`runner ${port}`, "runner.ts", [
      ...common,
      `--port=${port}`,
      `--dir=${NodePath.join(dir, String(port))}`
    ])
    runners.push(runner)
    console.log(await runner.waitFor("RUNNER READY", 120_000))
  }
  const run = async (runId: string) => {
    const driver = start("driver", "driver.ts", [...common, `--run-id=${runId}`, "--timeout-s=300"])
    const done = await driver.waitFor("DONE", 320_000)
    const results = driver.lines
      .filter((l) => l.startsWith("RESULT "))
      .map(
        (l) =>
          JSON.parse(l.slice(7)) as {
            group: string
            runner: string
            recorded: boolean
            summary: { tables: Record<string, number>; loadId: string | null; stateVersionAfter: number }
          }
      )
    return { results, ms: Number(done.split(" ")[1]) }
  }
  const first = await run("example-run-1")
  console.log(`\nrun example-run-1: ${first.results.length} groups in ${(first.ms / 1000).toFixed(1)} s`)
  console.log("group  runner            rows  load id             state version")
  for (const r of first.results) {
    const loaded = Object.values(r.summary.tables).reduce((a, b) => a + b, 0)
    console.log(
      `${r.group.padEnd(6)} ${r.runner.padEnd(16)} ${String(loaded).padStart(6)}  ${String(r.summary.loadId).padEnd(19)} ${r.summary.stateVersionAfter}`
    )
  }
  const loadsBefore = await loads()
  const again = await run("example-run-1")
  const same = JSON.stringify(again.results) === JSON.stringify(first.results) && (await loads()) === loadsBefore
  console.log(
    `\nthe same run id again: ${same ? "the same results, nothing loaded" : "DIFFERENT results"} (${(again.ms / 1000).toFixed(1)} s)`
  )
  if (!same) process.exitCode = 1
} finally {
  stopAll()
  await Promise.all(
    runners.map((r) => (r.child.exitCode === null ? new Promise((resolve) => r.child.on("close", resolve)) : undefined))
  )
  await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; DROP SCHEMA IF EXISTS "${dataset}" CASCADE`).catch(
    () => undefined
  )
  NodeFs.rmSync(dir, { recursive: true, force: true })
  console.log("runners stopped; cluster schema and dataset dropped")
}
