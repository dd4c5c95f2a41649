// AO's own client (@permaweb/aoconnect 0.0.98), unchanged, driving aonet's Lua module on a devnet.
// Env: MU_URL, CU_URL, GATEWAY_URL, MODULE (the devnet's lua module id), SCHEDULER, AUTHORITY (the
// MU's address: aos-style processes trust pushed messages only from it), WALLET (JWK path).
// Prints one JSON object with what each step returned; tests/test_lua_devnet.py asserts on it.
import crypto from "node:crypto";
import fs from "node:fs";
import { connect, createDataItemSigner } from "@permaweb/aoconnect";

const env = process.env;
const ao = connect({ MODE: "legacy", MU_URL: env.MU_URL, CU_URL: env.CU_URL, GATEWAY_URL: env.GATEWAY_URL,
                     noLog: true });
const jwk = JSON.parse(fs.readFileSync(env.WALLET, "utf8"));
const signer = createDataItemSigner(jwk);
const me = crypto.createHash("sha256").update(Buffer.from(jwk.n, "base64url")).digest("base64url");
const tags = (obj) => Object.entries(obj).map(([name, value]) => ({ name, value }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = { me };
const step = async (name, fn) => {
  try { out[name] = await fn(); } catch (e) { out[name] = { error: String(e && e.stack || e) }; throw e; }
  return out[name];
};
const spawnLua = (name) => ao.spawn({ module: env.MODULE, scheduler: env.SCHEDULER, signer,
                                      tags: tags({ Authority: env.AUTHORITY, Name: name }) });
const evalIn = async (pid, code) => {
  const id = await ao.message({ process: pid, signer, tags: tags({ Action: "Eval" }), data: code });
  return ao.result({ process: pid, message: id });
};
// dryrun as the owner (Eval only runs for the process's owner), until `done(result)` or ~10 s
const poll = async (pid, code, done) => {
  let r;
  for (let i = 0; i < 100; i++) {
    r = await ao.dryrun({ process: pid, tags: tags({ Action: "Eval" }), data: code, Owner: me });
    if (done(r)) return r;
    await sleep(100);
  }
  return r;
};
const gql = async (query, variables) => {
  const r = await fetch(env.GATEWAY_URL + "/graphql", { method: "POST", headers: { "content-type": "application/json" },
                                                        body: JSON.stringify({ query, variables }) });
  return r.json();
};

try {
  const a = await step("spawnA", () => spawnLua("aoconnect-lua-a"));
  await step("eval", () => evalIn(a, "return 1 + 41"));
  await step("dryrunEval", () => ao.dryrun({ process: a, tags: tags({ Action: "Eval" }), data: "return 1 + 41",
                                             Owner: me }));
  await step("addHandler", () => evalIn(a,
    'Handlers.add("ping", "Ping", function(msg) msg.reply({Data = "pong"}) end)'));

  // a wallet pings: the reply is in the result, and the MU delivers it to the wallet (the gateway)
  const pingId = await step("ping", () => ao.message({ process: a, signer, tags: tags({ Action: "Ping" }) }));
  await step("pingResult", () => ao.result({ process: a, message: pingId }));
  await step("walletReply", async () => {
    const q = `query($to: [String!]!, $from: [String!]!) { transactions(recipients: $to,
                 tags: [{name: "From-Process", values: $from}]) { edges { node { id recipient tags { name value } } } } }`;
    for (let i = 0; i < 100; i++) {
      const r = await gql(q, { to: [me], from: [a] });
      if (r.errors) throw new Error("gateway GraphQL: " + JSON.stringify(r.errors));
      const edge = r.data && r.data.transactions.edges[0];
      if (edge) {
        const data = await (await fetch(env.GATEWAY_URL + "/raw/" + edge.node.id)).text();
        return { ...edge.node, data };
      }
      await sleep(100);
    }
    return null;
  });

  // a process pings: it waits in Receive, and the MU carries A's reply back to it
  const b = await step("spawnB", () => spawnLua("aoconnect-lua-b"));
  await step("sendFromB", () => evalIn(b,
    `Reply = Send({Target = "${a}", Action = "Ping"}).receive()\nreturn "waiting"`));
  await step("replyAtB", () => poll(b, "return Reply and (Reply.Data .. ' from ' .. Reply.From) or 'none'",
                                    (r) => r.Output && r.Output.data !== "none"));
  await step("resultsA", () => ao.results({ process: a, sort: "ASC", limit: 20 }));
} catch (e) {
  out.failed = String(e && e.message || e);
}
process.stdout.write(JSON.stringify(out));
