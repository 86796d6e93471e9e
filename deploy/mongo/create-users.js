// Each service's own MongoDB user: readWrite on its own database and nothing else. Nothing the
// services run is a MongoDB administrator; only this script (and operators, for backups) uses
// the administrator account.
//
// compose: the one-shot `mongo-init` job runs it once MongoDB is healthy (replica set initiated),
// logged in as the root user the mongo image created from MONGO_INITDB_ROOT_*, on every
// `docker compose up` (idempotent: an existing user gets its password and roles reset).
// Kubernetes / any other MongoDB: run it once (and after adding a service or rotating a
// password) as a user administrator, with a directory of password files:
//
//   MONGO_PASSWORDS_DIR=deploy/secrets \
//     mongosh "mongodb://ADMIN@HOST:27017/admin?replicaSet=rs0&tls=true" --file deploy/mongo/create-users.js
//
// MONGO_PASSWORDS_DIR holds mongo-password-<user> (one line; python deploy/make_secrets.py
// writes them). With MONGO_ADMIN_PASSWORD_FILE set, the script logs in itself as
// MONGO_ADMIN_USERNAME (default root) against admin, so no password is on a command line.
//
// The table between the markers is JSON: deploy/make_secrets.py reads it (one password per user)
// and tests/deploy checks it against the services whose manifests declare Mongo(...).
// BEGIN USERS
const USERS = [
  {"user": "customer", "db": "customer", "roles": [{"role": "readWrite", "db": "customer"}]},
  {"user": "order", "db": "order", "roles": [{"role": "readWrite", "db": "order"}]},
  {"user": "payment", "db": "payment", "roles": [{"role": "readWrite", "db": "payment"}]},
  {"user": "chat", "db": "chat", "roles": [{"role": "readWrite", "db": "chat"}]},
  {"user": "files", "db": "files", "roles": [{"role": "readWrite", "db": "files"}]}
];
// END USERS

const fs = require("fs");
const env = process.env;

function secret(path) {
  const value = fs.readFileSync(path, "utf8").trim();
  if (!value) {
    throw new Error(`${path} is empty`);
  }
  return value;
}

if (env.MONGO_ADMIN_PASSWORD_FILE) {
  const admin = env.MONGO_ADMIN_USERNAME || "root";
  db.getSiblingDB("admin").auth(admin, secret(env.MONGO_ADMIN_PASSWORD_FILE));
}

const dir = env.MONGO_PASSWORDS_DIR || "/run/secrets";
for (const entry of USERS) {
  const pwd = secret(`${dir}/mongo-password-${entry.user}`);
  const database = db.getSiblingDB(entry.db);
  if (database.getUser(entry.user)) {
    database.updateUser(entry.user, {pwd: pwd, roles: entry.roles});
    print(`mongo-init: ${entry.user}@${entry.db}: password and roles reset`);
  } else {
    database.createUser({user: entry.user, pwd: pwd, roles: entry.roles});
    print(`mongo-init: ${entry.user}@${entry.db}: created`);
  }
}
