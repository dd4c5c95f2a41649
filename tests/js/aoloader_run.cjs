// Run a message sequence through @permaweb/ao-loader, the reference for aonet's emscripten host.
//
// Input (stdin, JSON): {"module": path, "format": "...", "options": {computeLimit, memoryLimit, ...},
//   "mode": "memory" | "instance", "program": argv[0] (default: this script's path), "messages": [[msg, env], ...], "repeat": n, "setup": [[msg, env], ...] (bench only: setup runs once, untimed)}
// Output (stdout, one JSON line per message): {Output, Messages, Spawns, Assignments, Error, GasUsed,
//   memory: {length, sha256}} or {thrown: "..."}; with repeat > 0 a last line {seconds, messages}.
// A failed message (Error or a throw) keeps the previous Memory and continues in a fresh instance,
// as AO's CU does; `memory` is the hash of the Memory carried forward.
// "memory" passes the previous result's Memory into every call (as AO's CU does); "instance" keeps
// the state in the instance (no Memory argument).
// No command-line arguments on purpose: emscripten's glue copies argv (and the script path, as
// argv[0] and env `_`) into the module's memory.
const fs = require('fs')
const crypto = require('crypto')
const path = require('path')
const AoLoader = require(path.join(__dirname, '..', '..', 'node_modules', '@permaweb', 'ao-loader'))

// the loader's glue replaces process.hrtime and performance.now with its Date.now counter: keep a real clock
const clock = process.hrtime.bigint.bind(process.hrtime)
const write = (obj) => fs.writeSync(1, JSON.stringify(obj) + '\n')

async function main () {
  const req = JSON.parse(fs.readFileSync(0, 'utf8'))
  // the glue reads argv[0] from process.argv[1] when the module is instantiated: "program" sets it
  // (e.g. "./this.program", what aonet's CU passes), so the memory can match a host run with it
  if (req.program) process.argv[1] = req.program
  const binary = fs.readFileSync(req.module)
  let handle = await AoLoader(binary, { format: req.format, ...(req.options || {}) })
  let memory = null
  const keepMemory = req.mode !== 'instance'
  if (req.repeat) {
    for (const [msg, env] of req.setup || []) {
      const res = await handle(keepMemory ? memory : null, msg, env)
      if (keepMemory) memory = res.Memory
    }
    const t0 = clock()
    let n = 0
    for (let r = 0; r < req.repeat; r++) {
      for (const [msg, env] of req.messages) {
        const res = await handle(keepMemory ? memory : null, msg, env)
        if (keepMemory) memory = res.Memory
        n++
      }
    }
    const seconds = Number(clock() - t0) / 1e9
    write({ seconds, messages: n })
    return
  }
  // As AO's CU: a failed message (Error or a throw) keeps the previous Memory and discards the instance.
  const memHash = (m) => m ? { length: m.byteLength, sha256: crypto.createHash('sha256').update(m).digest('hex') } : null
  for (const [msg, env] of req.messages) {
    let out
    try {
      const res = await handle(keepMemory ? memory : null, msg, env)
      out = { Output: res.Output, Messages: res.Messages, Spawns: res.Spawns, Assignments: res.Assignments,
        Error: res.Error, GasUsed: res.GasUsed }
      if (res.Error === undefined) memory = res.Memory
    } catch (e) {
      out = { thrown: String(e && e.message ? e.message : e) }
    }
    if (out.thrown !== undefined || out.Error !== undefined) {
      handle = await AoLoader(binary, { format: req.format, ...(req.options || {}) })
    }
    out.memory = memHash(memory)
    write(out)
  }
}

main().then(() => process.exit(0), (e) => { fs.writeSync(2, String(e && e.stack || e) + '\n'); process.exit(1) })
