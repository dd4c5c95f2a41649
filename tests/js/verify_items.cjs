// Verify ANS-104 data items with AO's reference JS library (arbundles) and print what it reads.
// Usage: node verify_items.cjs file1.bin [file2.bin ...]  ->  JSON array on stdout
const fs = require("fs");
const { DataItem } = require("@dha-team/arbundles");

(async () => {
  const out = [];
  for (const file of process.argv.slice(2)) {
    const item = new DataItem(fs.readFileSync(file));
    let valid;
    try { valid = await DataItem.verify(item.getRaw()); } catch (e) { valid = false; }
    out.push({
      file, valid, id: item.id, owner: item.owner, signatureType: item.signatureType,
      target: item.target, anchor: item.anchor, tags: item.tags,
      data: Buffer.from(item.rawData).toString("base64"),
    });
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
