/**
 * A throwaway standalone ZooKeeper 3.8 (Debian package) on 127.0.0.1 for integration tests: free client port, temp
 * data dir, stopped by pid. Mirrors ../shared/reference/zk-up.sh. Optionally also a TLS client port
 * (`secureClientPort`, Netty, PEM key and trust stores) whose clients are authenticated by their certificate's
 * subject DN (x509 auth provider), so that znodes can carry `x509:CN=...` ACLs.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, removeDir, startProcess, tempDir, waitFor } from './process.js';

export const ZK_SERVER = '/usr/share/zookeeper/bin/zkServer.sh';

export interface ZooKeeperServer {
  /** `127.0.0.1:<port>` */
  readonly endpoint: string;
  /** `127.0.0.1:<port>` of the TLS client port, when started with `tls`. */
  readonly secureEndpoint?: string;
  /** The JVM's pid (start-foreground execs java). */
  readonly pid: number;
  /** Signals the server's process group (SIGSTOP/SIGCONT for fault tests). */
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** Sends a four-letter word and returns the whole answer (the server closes the connection after it). */
export async function fourLetterWord(
  host: string,
  port: number,
  word: string,
  timeoutMs = 2000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${word} from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(word));
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

/**
 * Starts a ZooKeeper; a server that exits at start (its free port taken meanwhile by another test run on the
 * machine: the JVM logs nothing useful then) is retried on a new port, twice.
 */
export async function startZooKeeper(options: ZooKeeperOptions = {}): Promise<ZooKeeperServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startZooKeeperOnce(options);
    } catch (e) {
      if (attempt >= 3 || !(e instanceof Error) || !e.message.startsWith('zookeeper exited')) throw e;
    }
  }
}

export interface ZooKeeperOptions {
  /** The server's cap on the session timeout clients negotiate (default 60 s). */
  readonly maxSessionTimeoutMs?: number;
  /**
   * Also serve TLS clients on a second port (PEM files; the key unencrypted PKCS#8). Clients must present a
   * certificate signed by `caCert` (ZooKeeper's default `ssl.clientAuth=need`); its subject DN is their x509 id.
   */
  readonly tls?: {
    readonly caCert: string;
    readonly serverCert: string;
    readonly serverKey: string;
  };
}

/**
 * The Debian package's classpath (zkEnv.sh, and the jar's manifest) lacks netty-codec, which the Netty connection
 * factory needs (its TLS handler is a codec): every connection would fail with NoClassDefFoundError. A second `-cp`
 * in SERVER_JVMFLAGS comes after zkServer.sh's own and wins; slf4j-simple makes the server's warnings visible.
 */
const TLS_CLASSPATH = [
  '/etc/zookeeper/conf',
  '/usr/share/java/zookeeper.jar',
  '/usr/share/java/netty-codec.jar',
  '/usr/share/java/netty-resolver.jar',
  '/usr/share/java/slf4j-simple.jar',
].join(':');

/** zoo.cfg lines for the TLS port; the key store is one PEM file holding the key and the certificate. */
function tlsConfig(dir: string, port: number, tls: NonNullable<ZooKeeperOptions['tls']>): string[] {
  const keyStore = join(dir, 'server-keystore.pem');
  writeFileSync(keyStore, readFileSync(tls.serverKey, 'utf8') + readFileSync(tls.serverCert, 'utf8'));
  return [
    'serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory',
    `secureClientPort=${port}`,
    'secureClientPortAddress=127.0.0.1',
    `ssl.keyStore.location=${keyStore}`,
    'ssl.keyStore.type=PEM',
    `ssl.trustStore.location=${tls.caCert}`,
    'ssl.trustStore.type=PEM',
    // The test's client certificates name no host; the clients check the server, not the other way round.
    'ssl.hostnameVerification=false',
    'authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider',
  ];
}

/** Whether a TCP connect to the port succeeds. */
async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function startZooKeeperOnce(options: ZooKeeperOptions): Promise<ZooKeeperServer> {
  const dir = tempDir('zk');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const port = await freePort();
  let securePort = 0;
  while (options.tls && (securePort === 0 || securePort === port)) securePort = await freePort();
  const cfg = join(dir, 'zoo.cfg');
  // tickTime=500 lets clients ask for short sessions (min = 2 * tickTime); maxSessionTimeout keeps Patroni's
  // default ttl of 30 s possible too (the default max would be 20 * tickTime = 10 s).
  writeFileSync(
    cfg,
    [
      'tickTime=500',
      'initLimit=10',
      'syncLimit=5',
      `dataDir=${dataDir}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      `maxSessionTimeout=${options.maxSessionTimeoutMs ?? 60000}`,
      'maxClientCnxns=200',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,stat,srvr,mntr,conf,cons',
      'autopurge.purgeInterval=0',
      ...(options.tls ? tlsConfig(dir, securePort, options.tls) : []),
      '',
    ].join('\n'),
  );
  // Debian's zkEnv.sh hard-sets ZOOCFGDIR, so the config goes in as an explicit path; start-foreground execs java,
  // so the pid we track is the JVM's.
  const server = startProcess(ZK_SERVER, ['start-foreground', cfg], join(dir, 'zk.log'), {
    cwd: dir,
    env: {
      ...process.env,
      JMXDISABLE: 'true',
      SERVER_JVMFLAGS:
        (options.tls ? `-cp ${TLS_CLASSPATH} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn ` : '') +
        '-Xms32m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dzookeeper.admin.enableServer=false',
    },
  });
  const stop = async (): Promise<void> => {
    server.signal('SIGCONT'); // a stopped process cannot act on SIGTERM
    await server.stop(5000);
    removeDir(dir);
  };
  // A server that dies at start (port taken, bad config) fails the wait at once instead of after the timeout.
  let onExit: (() => void) | undefined;
  const exited = new Promise<never>((_resolve, reject) => {
    onExit = () => reject(new Error(`zookeeper exited with code ${String(server.child.exitCode)}`));
    server.child.once('exit', onExit);
  });
  try {
    await Promise.race([
      exited,
      waitFor(
        `zookeeper on 127.0.0.1:${port} to answer ruok`,
        // Once the server exited the race is already lost; end the polling too.
        async () =>
          server.child.exitCode !== null ||
          ((await fourLetterWord('127.0.0.1', port, 'ruok', 1000)) === 'imok' &&
            (securePort === 0 || (await accepts(securePort)))),
        60_000,
        100,
      ),
    ]);
  } catch (e) {
    const log = server.log().slice(-2000);
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${log}`);
  } finally {
    if (onExit) server.child.off('exit', onExit);
  }
  const pid = server.child.pid ?? 0;
  return {
    endpoint: `127.0.0.1:${port}`,
    ...(securePort ? { secureEndpoint: `127.0.0.1:${securePort}` } : {}),
    pid,
    signal: (sig) => server.signal(sig),
    stop,
  };
}
