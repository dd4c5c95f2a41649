// AO's own client (@permaweb/aoconnect 0.0.98), unchanged, against an aonet devnet.
// Env: MU_URL, CU_URL, GATEWAY_URL, MODULE (a pingpong module id), SCHEDULER, WALLET (JWK path).
// Prints one JSON object with what each call returned; the pytest side asserts on it.
import fs from "node:fs";
import { connect, createDataItemSigner } from "@permaweb/aoconnect";

const env = process.env;
const ao = connect({ MODE: "legacy", MU_URL: env.MU_URL, CU_URL: env.CU_URL, GATEWAY_URL: env.GATEWAY_URL,
                     noLog: true });
const signer = createDataItemSigner(JSON.parse(fs.readFileSync(env.WALLET, "utf8")));
const out = {};
const step = async (name, fn) => {
  try { out[name] = await fn(); } catch (e) { out[name] = { error: String(e && e.stack || e) }; throw e; }
};

try {
  await step("spawn", () => ao.spawn({ module: env.MODULE, scheduler: env.SCHEDULER, signer,
                                        tags: [{ name: "Name", value: "aoconnect-e2e" }] }));
  const pid = out.spawn;
  await step("spawn2", () => ao.spawn({ module: env.MODULE, scheduler: env.SCHEDULER, signer }));
  await step("message", () => ao.message({ process: pid, signer, tags: [{ name: "Action", value: "Hit" }],
                                           data: "hello" }));
  await step("result", () => ao.result({ process: pid, message: out.message }));
  await step("message2", () => ao.message({ process: pid, signer, tags: [{ name: "Action", value: "Hit" }] }));
  await step("result2", () => ao.result({ process: pid, message: out.message2 }));
  await step("results", () => ao.results({ process: pid, sort: "ASC", limit: 10 }));
  await step("dryrun", () => ao.dryrun({ process: pid, tags: [{ name: "Action", value: "Count" }] }));
  await step("monitor", () => ao.monitor({ process: pid, signer }));
  await step("unmonitor", () => ao.unmonitor({ process: pid, signer }));
  // assign the first message (an Action=Hit) to the second process too
  await step("assign", () => ao.assign({ process: out.spawn2, message: out.message }));
  await step("assignResult", async () => {
    for (let i = 0; i < 50; i++) {
      const d = await ao.dryrun({ process: out.spawn2, tags: [{ name: "Action", value: "Count" }] });
      if (d.Output && d.Output.hits >= 1) return d;
      await new Promise((r) => setTimeout(r, 100));
    }
    return ao.dryrun({ process: out.spawn2, tags: [{ name: "Action", value: "Count" }] });
  });
} catch (e) {
  out.failed = String(e && e.message || e);
}
process.stdout.write(JSON.stringify(out));
