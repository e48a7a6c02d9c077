// A real PostgreSQL server for the benchmark, started from Debian's binaries
// (/usr/lib/postgresql/<newest>/bin, or $TELEMETRY_TEST_PG_BIN) as the Rust tests do
// (crates/telemetry-collector/tests/common/postgres.rs): a cluster of its own in a
// directory under /tmp, trust authentication, listening on 127.0.0.1 at a free port and on
// a unix socket in its directory. As root (initdb refuses root) every server command runs
// as the postgres user (`runuser -u postgres --`). A watchdog shell stops the server and
// removes the directory once this process is gone, however it ended.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

function binDir() {
  if (process.env.TELEMETRY_TEST_PG_BIN) return process.env.TELEMETRY_TEST_PG_BIN;
  const versions = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql')
        .filter((v) => /^\d+$/.test(v) && existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
        .map(Number)
        .sort((a, b) => a - b)
    : [];
  if (!versions.length) {
    throw new Error(
      "PostgreSQL's initdb was not found in /usr/lib/postgresql/*/bin: install it with " +
        '`apt-get install postgresql` (`make deps-system` and .ci/run do it), or point ' +
        'TELEMETRY_TEST_PG_BIN at a directory holding initdb, pg_ctl and psql',
    );
  }
  return `/usr/lib/postgresql/${versions.at(-1)}/bin`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let next = 1;

export class Postgres {
  static async start(settings = {}) {
    const pg = new Postgres();
    await pg.#create(settings);
    return pg;
  }

  constructor() {
    this.bin = binDir();
    this.root = process.getuid() === 0;
    this.dir = `/tmp/telemetry-dashboard-pg-${process.pid}-${next++}`;
    this.data = join(this.dir, 'data');
    this.sock = join(this.dir, 'sock');
    this.log = join(this.dir, 'postgres.log');
    this.port = 0;
    this.running = false;
  }

  // A server program (initdb, pg_ctl), as the postgres user when root.
  #tool(name, args) {
    const program = join(this.bin, name);
    const [cmd, argv] = this.root ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];
    return spawnSync(cmd, argv, { cwd: this.dir, env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async #create(settings) {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.sock, { recursive: true });
    if (this.root) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(this.dir, uid, gid);
      chownSync(this.sock, uid, gid);
    }
    this.#watchdog();
    const init = this.#tool('initdb', ['-D', this.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    if (init.status !== 0) throw new Error(`initdb failed (${init.status}):\n${init.stdout}${init.stderr}`);
    appendFileSync(join(this.data, 'postgresql.conf'), "\ninclude = 'telemetry_dashboard.conf'\n");
    let last = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      this.port = await freePort();
      const all = {
        listen_addresses: '127.0.0.1',
        port: String(this.port),
        unix_socket_directories: this.sock,
        fsync: 'off',
        full_page_writes: 'off',
        synchronous_commit: 'off',
        max_connections: '100',
        shared_buffers: '128MB',
        log_min_messages: 'warning',
        ...settings,
      };
      const text = Object.entries(all)
        .map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'`)
        .join('\n');
      writeFileSync(join(this.data, 'telemetry_dashboard.conf'), `# written by tests/dashboard/lib/postgres.mjs\n${text}\n`);
      const start = this.#tool('pg_ctl', ['-D', this.data, '-l', this.log, '-w', '-t', '60', 'start']);
      if (start.status === 0) {
        this.running = true;
        this.psql('postgres', 'CREATE DATABASE telemetry');
        return;
      }
      last = `${start.stdout}${start.stderr}\n--- server log:\n${this.logText()}`;
      this.#tool('pg_ctl', ['-D', this.data, '-m', 'immediate', 'stop']);
      if (!last.includes('already in use')) break;
    }
    throw new Error(`PostgreSQL in ${this.dir} did not start: ${last}`);
  }

  // The watchdog: stops the server and removes the directory when this process is gone.
  #watchdog() {
    const script = 'pid=$1; dir=$2; shift 2\nwhile kill -0 "$pid" 2>/dev/null; do sleep 1; done\n"$@" -D "$dir/data" -m immediate stop >/dev/null 2>&1\nrm -rf "$dir"';
    const runuser = this.root ? ['runuser', '-u', 'postgres', '--'] : [];
    const child = spawn('sh', ['-c', script, 'sh', String(process.pid), this.dir, ...runuser, join(this.bin, 'pg_ctl')], {
      cwd: '/',
      stdio: 'ignore',
      detached: true,
    });
    child.unref();
  }

  // postgres://postgres@127.0.0.1:PORT/telemetry
  url(db = 'telemetry') {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  psql(db, sql) {
    const out = spawnSync(join(this.bin, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', this.sock, '-p', String(this.port), '-U', 'postgres', '-d', db, '-c', sql], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (out.status !== 0) throw new Error(`psql -d ${db} -c ${JSON.stringify(sql)}: ${out.stderr}${out.stdout}`);
    return out.stdout.trim();
  }

  logText() {
    try {
      return readFileSync(this.log, 'utf8');
    } catch (err) {
      return `(no log: ${err.message})`;
    }
  }

  stop() {
    if (this.running) {
      this.#tool('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', '-t', '60', 'stop']);
      this.running = false;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
