// Instrument a wasm module with AO's gas metering (metering.usegas per basic block), as AO's
// dev-cli does for the emscripten formats.  usage: node aoloader_meter.cjs in.wasm out.wasm [i32|i64]
const fs = require('fs')
const path = require('path')
const metering = require(path.join(__dirname, '..', '..', 'node_modules', '@permaweb', 'wasm-metering'))

const [input, output, meterType = 'i32'] = process.argv.slice(2)
if (!input || !output) {
  console.error('usage: node aoloader_meter.cjs in.wasm out.wasm [i32|i64]')
  process.exit(2)
}
const metered = metering.meterWASM(fs.readFileSync(input), { meterType })
fs.writeFileSync(output, Buffer.from(metered))
