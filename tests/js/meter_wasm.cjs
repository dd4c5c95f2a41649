// AO's metering pass as ao-loader 0.0.49 applies it to the *-metering formats (its bundled copy of
// @permaweb/wasm-metering), for comparing aonet.vm.metering with it byte for byte.
// usage: node meter_wasm.cjs in.wasm out.wasm i32|i64   (prints the error and exits 1 if it throws)
const fs = require('fs')
const path = require('path')
const metering = require(path.join(__dirname, '..', '..', 'node_modules', '@permaweb', 'wasm-metering'))

const [input, output, meterType] = process.argv.slice(2)
if (!input || !output || !['i32', 'i64'].includes(meterType)) {
  console.error('usage: node meter_wasm.cjs in.wasm out.wasm i32|i64')
  process.exit(2)
}
let metered
try {
  metered = metering.meterWASM(fs.readFileSync(input), { meterType })
} catch (e) {
  console.error(String(e && e.message || e))
  process.exit(1)
}
fs.writeFileSync(output, Buffer.from(metered))
