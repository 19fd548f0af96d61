// Initiates the replica set REPLICA_SET with the StatefulSet's pods SERVICE-0.SERVICE ... (MEMBERS of them), or adds
// those a set that exists lacks, and returns once the set has a primary; running it again changes nothing.
// Run by the mongo-init Job: mongosh --nodb --quiet mongo-init.js
const set = process.env.REPLICA_SET;
const service = process.env.SERVICE;
const hosts = Array.from({ length: Number(process.env.MEMBERS) }, (_, i) => `${service}-${i}.${service}:27017`);

// Runs `step` until it returns something truthy, every two seconds; returns that.
function until(what, step) {
  for (;;) {
    try {
      const done = step();
      if (done) return done;
      print(`${what}: not yet.`);
    } catch (e) {
      print(`${what}: ${e.message}`);
    }
    sleep(2000);
  }
}

function direct(host) {
  return connect(`mongodb://${host}/admin?directConnection=true&serverSelectionTimeoutMS=5000`);
}

db = until(`Reaching ${hosts[0]}`, () => {
  const first = direct(hosts[0]);
  return first.adminCommand({ ping: 1 }).ok && first;
});

let initiated = true;
try {
  rs.status();
} catch (e) {
  if (e.codeName !== "NotYetInitialized") throw e;
  initiated = false;
}
if (!initiated) {
  const members = hosts.map((host, _id) => ({ _id, host }));
  until(`Initiating ${set} with ${hosts.join(", ")}`, () => {
    try {
      return rs.initiate({ _id: set, members }).ok;
    } catch (e) {
      // An earlier attempt that went through after all.
      if (e.codeName === "AlreadyInitialized") return true;
      throw e;
    }
  });
  print(`Initiated the replica set ${set} with ${hosts.join(", ")}.`);
}

const primary = until(`Waiting for a primary of ${set}`, () => db.hello().primary);
db = direct(primary);
const present = rs.conf().members.map((m) => m.host);
for (const host of hosts.filter((h) => !present.includes(h))) {
  until(`Adding ${host} to ${set}`, () => rs.add(host).ok);
  print(`Added ${host} to ${set}.`);
}
print(`Replica set ${set}: primary ${primary}, members ${rs.conf().members.map((m) => m.host).join(", ")}.`);
