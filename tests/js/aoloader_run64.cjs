// Run a message sequence through @permaweb/ao-loader's `wasm64-unknown-emscripten-draft_2024_02_15`
// glue: the reference for a wasm64 emscripten host. Needs `node --experimental-wasm-memory64` (Node 20).
//
// Input (stdin, JSON): {"module": path, "format": (default the wasm64 format), "options": {...},
//   "program": argv[0] (default: this script's path), "messages": [[msg, env], ...]}
// Output (stdout, one JSON line per message): {Output, Messages, Spawns, Assignments, Error, GasUsed,
//   memory: {length, sha256}} or {thrown: "..."}.
// As AO's CU: the previous result's Memory is passed into every call, and a failed message (Error or
// a throw) keeps the previous Memory and continues in a fresh instance; `memory` is the hash of the
// Memory carried forward.
// No command-line arguments on purpose: emscripten's glue reads process.argv when it is instantiated.
const fs = require('fs')
const crypto = require('crypto')
const path = require('path')
const AoLoader = require(path.join(__dirname, '..', '..', 'node_modules', '@permaweb', 'ao-loader'))

const FORMAT = 'wasm64-unknown-emscripten-draft_2024_02_15'
const write = (obj) => fs.writeSync(1, JSON.stringify(obj) + '\n')
const memHash = (m) => m ? { length: m.byteLength, sha256: crypto.createHash('sha256').update(m).digest('hex') } : null

async function main () {
  if (typeof WebAssembly.Memory !== 'function') throw new Error('no WebAssembly in this node')
  const req = JSON.parse(fs.readFileSync(0, 'utf8'))
  if (req.program) process.argv[1] = req.program
  const binary = fs.readFileSync(req.module)
  const load = () => AoLoader(binary, { format: req.format || FORMAT, ...(req.options || {}) })
  let handle = await load()
  let memory = null
  for (const [msg, env] of req.messages) {
    let out
    try {
      const res = await handle(memory, msg, env)
      out = { Output: res.Output, Messages: res.Messages, Spawns: res.Spawns, Assignments: res.Assignments,
        Error: res.Error, GasUsed: res.GasUsed }
      if (res.Error === undefined) memory = res.Memory
    } catch (e) {
      out = { thrown: String(e && e.message ? e.message : e) }
    }
    if (out.thrown !== undefined || out.Error !== undefined) handle = await load()
    out.memory = memHash(memory)
    write(out)
  }
}

main().then(() => process.exit(0), (e) => { fs.writeSync(2, String(e && e.stack || e) + '\n'); process.exit(1) })
