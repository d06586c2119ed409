/**
 * The `pipestate` CLI run in this process through its `run(argv)` (test/cli/inprocess.ts), with the
 * environment given as a ConfigProvider and no terminal on stdin, against pipelines created here
 * with Pipeline.run on SQLite and PostgreSQL. The built binary itself is tested in bin.test.ts.
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { Effect, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Destination from "../../src/destination/index.js"
import { makeTempDir } from "../helpers.js"
import { postgresAvailable, query, TEST_POSTGRES_URL } from "../postgres.js"
import { type CliResult, hasStackTrace, readStateFile, runShop, sqliteTables } from "./fixtures.js"
import { cliRun as cli } from "./inprocess.js"

type Json = Record<string, unknown>

const sourcesOf = (state: Json) => state.sources as Record<string, Record<string, unknown>>
const resourcesOf = (state: Json, source = "shop") =>
  (sourcesOf(state)[source]?.resources ?? {}) as Record<string, Record<string, unknown>>

/** asserts a failed command: exit 1, a message, no stack trace */
const expectFailure = (result: CliResult, message: string) => {
  expect(result.status).toBe(1)
  expect(result.stderr).toContain(message)
  expect(hasStackTrace(result.stderr)).toBe(false)
  expect(hasStackTrace(result.stdout)).toBe(false)
}

describe("pipestate CLI on SQLite", () => {
  const dir = makeTempDir("pipestate-cli-")
  const env = { PIPESTATE_PIPELINES_DIR: dir }
  const dbFile = NodePath.join(dir, "shop_pipeline", "shop_data.sqlite")
  const run = (args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
    cli(args, { env: { ...env, ...extra } })

  beforeAll(async () => {
    await Effect.runPromise(runShop({ pipelinesDir: dir, dataset: "shop_data", run: 1 }, Destination.sqlite()))
    await Effect.runPromise(runShop({ pipelinesDir: dir, dataset: "shop_data", run: 2 }, Destination.sqlite()))
    await Effect.runPromise(
      runShop({ pipelinesDir: dir, dataset: "other_data", name: "other_pipeline" }, Destination.sqlite())
    )
  })
  afterAll(() => NodeFs.rmSync(dir, { recursive: true, force: true }))

  it("pipeline list shows every pipeline with destination, dataset, state version and last run", async () => {
    const result = await run(["pipeline", "list"])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain(`2 pipelines in ${dir}`)
    expect(result.stdout).toMatch(/NAME\s+DESTINATION\s+DATASET\s+VERSION\s+LAST RUN/)
    expect(result.stdout).toMatch(/other_pipeline\s+sqlite\s+other_data\s+0\s+\d{4}-\d\d-\d\dT/)
    expect(result.stdout).toMatch(/shop_pipeline\s+sqlite\s+shop_data\s+1\s+\d{4}-\d\d-\d\dT/)
    const json = JSON.parse((await run(["pipeline", "list", "--json"])).stdout) as { pipelines: Array<Json> }
    expect(json.pipelines.map((p) => [p.name, p.state_version])).toEqual([
      ["other_pipeline", 0],
      ["shop_pipeline", 1]
    ])
    // the flag works without the env variable
    const viaFlag = await cli(["pipeline", "list", "--pipelines-dir", dir])
    expect(viaFlag.stdout).toContain("shop_pipeline")
  })

  it("info shows the working dir, destination, dataset, version, hash, first run, slot keys and option origins", async () => {
    const result = await run(["pipeline", "shop_pipeline", "info"])
    expect(result.status).toBe(0)
    const out = result.stdout
    expect(out).toContain(`working dir:    ${NodePath.join(dir, "shop_pipeline")}`)
    expect(out).toContain("destination:    sqlite (dlt.destinations.sqlalchemy)")
    expect(out).toContain(`location:       ${dbFile}`)
    expect(out).toContain("dataset:        shop_data")
    expect(out).toContain("state version:  1")
    expect(out).toContain(`version hash:   ${String(readStateFile(dir)._version_hash)}`)
    expect(out).toContain("first run:      no")
    expect(out).toContain("source state: last_sync, pages, meta")
    expect(out).toContain("orders: last_id, archive")
    expect(out).toContain("OrderItems: last_id, seen")
    expect(out).not.toContain("https://shop.example")
    expect(out).toMatch(new RegExp(`pipelines_dir\\s+${dir}\\s+env PIPESTATE_PIPELINES_DIR`))
    expect(out).toMatch(new RegExp(`target\\.sqlite_file\\s+${dbFile}\\s+local state \\(location\\)`))
    expect(out).toMatch(/keep_state_versions\s+100\s+default/)
  })

  it("info -v pretty-prints the values and cuts long ones; --full does not cut", async () => {
    const result = await run(["pipeline", "shop_pipeline", "info", "-v"])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain("last_sync: datetime(2024-01-02T00:00:00+00:00)")
    expect(result.stdout).toContain('"cursor": "c2"')
    expect(result.stdout).toContain("last_id: 20")
    expect(result.stdout).toMatch(/\n {10}… \([\d,]+ more chars\)\n/)
    expect(result.stdout).not.toContain("archive/2/299")
    const full = await run(["pipeline", "shop_pipeline", "info", "-v", "--full"])
    expect(full.stdout).toContain('"https://shop.example/orders/archive/2/299"')
    expect(full.stdout).not.toContain("more chars)")
  })

  it("info --json prints one document for scripts", async () => {
    const result = await run(["pipeline", "shop_pipeline", "info", "--json"])
    expect(result.status).toBe(0)
    const doc = JSON.parse(result.stdout) as Json
    expect(doc.pipeline_name).toBe("shop_pipeline")
    expect(doc.state_version).toBe(1)
    expect(doc.first_run).toBe(false)
    expect(doc.destination).toEqual({ name: "sqlite", type: "dlt.destinations.sqlalchemy", location: dbFile })
    const shop = (doc.sources as Record<string, { state: Json; resources: Record<string, Json> }>).shop
    expect(shop?.state.last_sync).toBe("2024-01-02T00:00:00+00:00")
    expect(shop?.resources.orders?.last_id).toBe(20)
    expect(shop?.resources.orders?.archive).toHaveLength(300)
    expect(doc.options).toContainEqual({ key: "pipelines_dir", value: dir, origin: "env PIPESTATE_PIPELINES_DIR" })
    expect(doc.options).toContainEqual({ key: "dataset", value: "(not set)", origin: "default" })
  })

  it("an unknown pipeline, a missing name or command and a bad flag fail with exit code 1", async () => {
    // read-only failures, so they run side by side
    const [unknown, noName, badName, noCommand, badCommand, bad] = await Promise.all([
      run(["pipeline", "shop", "info"]),
      run(["pipeline", "info"]),
      run(["pipeline", "../etc", "info"]),
      run(["pipeline", "shop_pipeline"]),
      run(["pipeline", "shop_pipeline", "infos"]),
      run(["pipeline", "shop_pipeline", "history", "--limit", "many"])
    ])
    expectFailure(
      await run(["pipeline", "shop_pipeline", "history", "--limit", "0"]),
      "--limit must be 1 or more, got 0"
    )
    expectFailure(unknown, "known pipelines: other_pipeline, shop_pipeline")
    expect(NodeFs.existsSync(NodePath.join(dir, "shop"))).toBe(false)
    expectFailure(noName, "needs a pipeline name")
    expectFailure(badName, "not a valid pipeline name")
    expectFailure(
      noCommand,
      "a command is missing: use `pipestate pipeline list` or `pipestate pipeline shop_pipeline info|"
    )
    expectFailure(badCommand, 'unknown command "infos"')
    // `list` takes only its options: a typo is an error, not ignored
    expectFailure(
      await run(["pipeline", "list", "--jsn"]),
      'pipestate pipeline list does not take "--jsn"; it takes --json and --pipelines-dir <dir>'
    )
    // a bad flag is reported by the parser, once, with exit code 1
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain("many")
    expect(hasStackTrace(bad.stderr + bad.stdout)).toBe(false)
  })

  it("history lists the kept versions and marks the local one", async () => {
    const result = await run(["pipeline", "shop_pipeline", "history"])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/VERSION\s+HASH\s+LOAD ID\s+CREATED AT/)
    expect(result.stdout).toMatch(/\n1\s+\S+=\s+\d+\.\d{6}\s+\S+Z\s+local\n0\s+/)
    const json = JSON.parse(
      (await run(["pipeline", "shop_pipeline", "history", "--json", "--limit", "1"])).stdout
    ) as Array<Json>
    expect(json.map((v) => v.version)).toEqual([1])
  })

  it("drop refuses without --yes when stdin is not a terminal, and --dry-run changes nothing", async () => {
    const before = NodeFs.readFileSync(NodePath.join(dir, "shop_pipeline", "state.json"), "utf8")
    const refused = await run(["pipeline", "shop_pipeline", "drop", "OrderItems"])
    expectFailure(refused, "refusing to drop without confirmation: stdin is not a terminal. Pass --yes")
    expect(refused.stdout).toContain("shop.OrderItems  state and table order_items")
    const dry = await run(["pipeline", "shop_pipeline", "drop", "--drop-all", "--dry-run"])
    expect(dry.status).toBe(0)
    expect(dry.stdout).toContain("tables to drop: customers, order_items, orders")
    expect(dry.stdout).toContain("source state dropped entirely: shop")
    expect(dry.stdout).toContain("dry run: nothing was changed")
    expect(NodeFs.readFileSync(NodePath.join(dir, "shop_pipeline", "state.json"), "utf8")).toBe(before)
    expect(await Effect.runPromise(sqliteTables(dbFile))).toContain("order_items")
  })

  it("drop by name and by re: drops tables and state as new versions", async () => {
    const byName = await run(["pipeline", "shop_pipeline", "drop", "OrderItems", "--yes"])
    expect(byName.status).toBe(0)
    expect(byName.stdout).toContain("tables to drop: order_items")
    expect(byName.stdout).toMatch(
      /dropped tables order_items and state: state version 2 \(hash \S+\) committed in load \d+\.\d{6}/
    )
    const byPattern = await run(["pipeline", "shop_pipeline", "drop", "re:^cust", "-y"])
    expect(byPattern.status).toBe(0)
    expect(byPattern.stdout).toContain("state version 3")
    expect(await Effect.runPromise(sqliteTables(dbFile))).toEqual([
      "_dlt_loads",
      "_dlt_pipeline_state",
      "_dlt_version",
      "orders"
    ])
    const state = readStateFile(dir)
    expect(state._state_version).toBe(3)
    expect(Object.keys(resourcesOf(state))).toEqual(["orders"])
    const history = (await run(["pipeline", "shop_pipeline", "history"])).stdout
    expect(history).toMatch(/\n3\s+.*local\n2\s+.*\n1\s+.*\n0\s+/)
  })

  it("drop --state-paths resets source state without touching tables; errors name the path position or the known resources", async () => {
    const result = await run([
      "pipeline",
      "shop_pipeline",
      "drop",
      "--state-paths",
      "meta.cursor",
      "--state-paths",
      "pages[0]",
      "--yes"
    ])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain("sources.shop: pages[0]")
    expect(result.stdout).toContain("sources.shop: meta.cursor")
    const shop = sourcesOf(readStateFile(dir)).shop ?? {}
    expect(shop.meta).toEqual({ keep: true })
    expect(shop.pages).toEqual([2, 4])
    expect(await Effect.runPromise(sqliteTables(dbFile))).toContain("orders")

    const badPath = await run(["pipeline", "shop_pipeline", "drop", "--state-paths", "meta[0", "--yes"])
    expectFailure(badPath, "Invalid state path: expected ']' to close the '[' at position 4")
    expect(badPath.stderr).toContain("  meta[0\n        ^")
    expectFailure(
      await run(["pipeline", "shop_pipeline", "drop", "customers", "--yes"]),
      'no resource named "customers" in the state of this pipeline; known resources: shop.orders'
    )
    expectFailure(await run(["pipeline", "shop_pipeline", "drop", "--yes"]), "nothing to drop was selected")
    const none = await run(["pipeline", "shop_pipeline", "drop", "re:^zzz", "--yes"])
    expect(none.status).toBe(0)
    expect(none.stdout).toContain("warning: re:^zzz matched no resource")
    expect(none.stdout).toContain("nothing to drop")
  })

  it("restore --version makes an old version's content the newest, as a new version", async () => {
    expectFailure(
      await run(["pipeline", "shop_pipeline", "restore", "--version", "1"]),
      "refusing to restore without confirmation"
    )
    const dry = await run(["pipeline", "shop_pipeline", "restore", "--version", "1", "--dry-run"])
    expect(dry.stdout).toContain("restore the content of state version 1")
    expect(dry.stdout).toContain("as new state version 5")
    expect(dry.stdout).toContain("their tables are no longer in the dataset")
    const result = await run(["pipeline", "shop_pipeline", "restore", "--version", "1", "--yes"])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/restored: state version 5 \(hash \S+\) has the content of version 1/)
    const state = readStateFile(dir)
    expect(state._state_version).toBe(5)
    // customers and OrderItems were dropped with their tables: version 1's claims on them are not restored
    expect(Object.keys(resourcesOf(state))).toEqual(["orders"])
    expect(sourcesOf(state).shop?.pages).toEqual([1, 2, 4])
    expectFailure(
      await run(["pipeline", "shop_pipeline", "restore", "--version", "42", "--yes"]),
      "holds no state version 42"
    )
    const again = await run(["pipeline", "shop_pipeline", "restore", "--version", "1", "--yes"])
    expect(again.stdout).toContain("nothing to do")
  })

  it("drop --drop-all drops every table of the source and its whole state", async () => {
    const result = await run(["pipeline", "shop_pipeline", "drop", "--drop-all", "--yes"])
    expect(result.status).toBe(0)
    expect(await Effect.runPromise(sqliteTables(dbFile))).toEqual(["_dlt_loads", "_dlt_pipeline_state", "_dlt_version"])
    expect(sourcesOf(readStateFile(dir))).toEqual({})
    // the other pipeline is untouched
    expect((await run(["pipeline", "other_pipeline", "info"])).stdout).toContain("orders: last_id, archive")
  })

  it("sync restores a lost local state from the destination", async () => {
    NodeFs.rmSync(NodePath.join(dir, "other_pipeline", "state.json"))
    const result = await run(["pipeline", "other_pipeline", "sync", "--dataset", "other_data", "--yes"])
    expect(result.status).toBe(0)
    expect(result.stdout).toContain("restored state version 0")
    expect(readStateFile(dir, "other_pipeline").dataset_name).toBe("other_data")
    // without --dataset, the local state names it
    expect((await run(["pipeline", "other_pipeline", "sync", "--yes"])).stdout).toContain(
      `dataset other_data (${NodePath.join(dir, "other_pipeline", "other_data.sqlite")})`
    )
  })

  it("a corrupt state file: info says how to repair it, sync repairs it from what the working dir holds", async () => {
    const stateFile = NodePath.join(dir, "other_pipeline", "state.json")
    const good = NodeFs.readFileSync(stateFile, "utf8")
    // still JSON, but not a state: the dataset and destination names are salvaged
    NodeFs.writeFileSync(stateFile, JSON.stringify({ dataset_name: "other_data", destination_name: "sqlite" }))
    expectFailure(await run(["pipeline", "other_pipeline", "info"]), "is corrupt")
    expect((await run(["pipeline", "list"])).stdout).toMatch(/other_pipeline\s+\(corrupt state\.json\)/)
    const repaired = await run(["pipeline", "other_pipeline", "sync", "--yes"])
    expect(repaired.status).toBe(0)
    expect(repaired.stdout).toContain("restored state version 0")
    expect(readStateFile(dir, "other_pipeline")._version_hash).toBe(JSON.parse(good)._version_hash)
    // not JSON at all: the dataset file in the working dir that holds this pipeline's state is found
    NodeFs.writeFileSync(stateFile, "{")
    const found = await run(["pipeline", "other_pipeline", "sync", "--yes"])
    expect(found.status).toBe(0)
    expect(found.stdout).toContain(`dataset other_data (${NodePath.join(dir, "other_pipeline", "other_data.sqlite")})`)
    expect(readStateFile(dir, "other_pipeline")._version_hash).toBe(JSON.parse(good)._version_hash)
  })

  it("restore of a version the dataset does not keep names the history command with the flags it was given", async () => {
    const result = await run([
      "pipeline",
      "other_pipeline",
      "restore",
      "--state-version",
      "99",
      "--pipelines-dir",
      dir,
      "--yes"
    ])
    expectFailure(result, "holds no state version 99")
    const printed = `pipestate pipeline other_pipeline history --pipelines-dir ${dir}`
    expect(result.stderr).toContain(`\`${printed}\``)
    // as printed, without the environment that names the pipelines dir
    const history = await cli(printed.split(" ").slice(1), { env: {} })
    expect(history.status).toBe(0)
  })

  it("a state file with nothing readable: every command says it is corrupt (not unknown), with a quoted name", async () => {
    const odd = "odd pipe; echo x"
    NodeFs.mkdirSync(NodePath.join(dir, odd), { recursive: true })
    NodeFs.writeFileSync(NodePath.join(dir, odd, "state.json"), "[]")
    try {
      for (const command of [
        ["info"],
        ["history"],
        ["drop", "r", "--yes"],
        ["restore", "--state-version", "0", "--yes"],
        ["sync", "--yes"]
      ]) {
        const result = await run(["pipeline", odd, ...command])
        expectFailure(result, "is corrupt")
        expect(result.stderr).not.toContain("not found")
        expect(result.stderr).toContain("`pipestate pipeline 'odd pipe; echo x' sync --dataset <dataset> --yes`")
        expect(result.stderr).toContain("--destination postgres --url <url>")
      }
    } finally {
      NodeFs.rmSync(NodePath.join(dir, odd), { recursive: true, force: true })
    }
  })

  it("sync against a destination without state fails, saying so, and leaves no working dir behind", async () => {
    const result = await run(["pipeline", "ghost", "sync", "--dataset", "nothing_here", "--yes"])
    expectFailure(result, "holds no state of this pipeline")
    expect(NodeFs.existsSync(NodePath.join(dir, "ghost"))).toBe(false)
  })
})

describe.skipIf(!postgresAvailable)("pipestate CLI on PostgreSQL", () => {
  // made in beforeAll: a skipped block must not leave directories behind
  let dir = ""
  let clean = ""
  const dataset = `cli_${process.pid}_${Date.now().toString(36)}`
  const pg = () => Destination.postgres({ url: Redacted.make(TEST_POSTGRES_URL) })
  const run = (args: ReadonlyArray<string>, pipelinesDir = dir) =>
    cli(args, { env: { PIPESTATE_PIPELINES_DIR: pipelinesDir, PIPESTATE_POSTGRES_URL: TEST_POSTGRES_URL } })
  const tables = async () =>
    (
      await query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
        [dataset]
      )
    ).map((r) => r.table_name)

  beforeAll(async () => {
    dir = makeTempDir("pipestate-cli-pg-")
    clean = makeTempDir("pipestate-cli-pg-clean-")
    await Effect.runPromise(runShop({ pipelinesDir: dir, dataset, run: 1 }, pg()))
    await Effect.runPromise(runShop({ pipelinesDir: dir, dataset, run: 2 }, pg()))
  })
  afterAll(async () => {
    await query(`DROP SCHEMA IF EXISTS "${dataset}" CASCADE`)
    for (const d of [dir, clean]) NodeFs.rmSync(d, { recursive: true, force: true })
  })

  it("list, info and history read the pipeline; the destination comes from the local state", async () => {
    expect((await run(["pipeline", "list"])).stdout).toMatch(
      new RegExp(`shop_pipeline\\s+postgres\\s+${dataset}\\s+1\\s`)
    )
    const info = await run(["pipeline", "shop_pipeline", "info"])
    expect(info.stdout).toContain("destination:    postgres (dlt.destinations.postgres)")
    expect(info.stdout).toMatch(/destination\.postgres\.url\s+<redacted>\s+env PIPESTATE_POSTGRES_URL/)
    const history = await run(["pipeline", "shop_pipeline", "history"])
    expect(history.status).toBe(0)
    expect(history.stdout).toMatch(/\n1\s+.*local\n0\s+/)
  })

  it("drop and restore commit new versions in PostgreSQL; a restore never brings back the state of dropped tables", async () => {
    const dropped = await run(["pipeline", "shop_pipeline", "drop", "orders", "OrderItems", "--yes"])
    expect(dropped.status).toBe(0)
    expect(await tables()).toEqual(["_dlt_loads", "_dlt_pipeline_state", "_dlt_version", "customers"])
    // version 1 without the state of the dropped resources is version 2: nothing to commit
    const same = await run(["pipeline", "shop_pipeline", "restore", "--version", "1", "--yes"])
    expect(same.status).toBe(0)
    expect(same.stdout).toContain(
      "nothing to do: version 1 without the state of shop.orders, shop.OrderItems (their tables are no longer in the dataset) is the content of the newest state version 2"
    )
    const stateOnly = await run(["pipeline", "shop_pipeline", "drop", "customers", "--state-only", "--yes"])
    expect(stateOnly.status).toBe(0)
    expect(await tables()).toContain("customers")
    const restored = await run(["pipeline", "shop_pipeline", "restore", "--version", "2", "--yes"])
    expect(restored.status).toBe(0)
    expect(restored.stdout).toMatch(/restored: state version 4 \(hash \S+\) has the content of version 2/)
    expect(Object.keys(resourcesOf(readStateFile(dir)))).toEqual(["customers"])
    const rows = await query<{ version: string }>(
      `SELECT version FROM "${dataset}"._dlt_pipeline_state ORDER BY version`
    )
    expect(rows.map((r) => Number(r.version))).toEqual([0, 1, 2, 3, 4])
  })

  it("sync on a clean machine restores from --destination, --url and --dataset", async () => {
    const result = await cli(
      [
        "pipeline",
        "shop_pipeline",
        "sync",
        "--destination",
        "postgres",
        "--url",
        TEST_POSTGRES_URL,
        "--dataset",
        dataset,
        "--yes"
      ],
      { env: { PIPESTATE_PIPELINES_DIR: clean } }
    )
    expect(result.status).toBe(0)
    expect(result.stdout).toContain("restored state version 4")
    expect(readStateFile(clean)._state_version).toBe(4)
    expect((await run(["pipeline", "shop_pipeline", "info"], clean)).stdout).toContain("state version:  4")
  })

  it("an unreachable server fails with its host and port, never the password", async () => {
    const result = await cli(
      ["pipeline", "shop_pipeline", "history", "--url", "postgres://loader:s3cr3t-pw@127.0.0.1:1/warehouse"],
      { env: { PIPESTATE_PIPELINES_DIR: dir } }
    )
    expectFailure(result, "127.0.0.1:1")
    expect(result.stderr + result.stdout).not.toContain("s3cr3t-pw")
  })

  it("postgres without a URL says how to give one", async () => {
    const result = await cli(["pipeline", "shop_pipeline", "history"], { env: { PIPESTATE_PIPELINES_DIR: dir } })
    expectFailure(result, "no server is given: pass --url")
  })
})
