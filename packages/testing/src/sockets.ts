import { readFile, readdir, readlink } from 'node:fs/promises';

export interface TcpConnection {
  localPort: number;
  remotePort: number;
}

/**
 * The TCP connections a process holds right now (Linux: its socket fds matched against
 * /proc/net/tcp and tcp6), e.g. to tell which requests a fake received came from a
 * process a test is about to kill. Undefined where /proc is not available.
 */
export async function tcpConnectionsOf(pid: number): Promise<TcpConnection[] | undefined> {
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  const inodes = new Set<string>();
  await Promise.all(
    fds.map(async (fd) => {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m?.[1]) inodes.add(m[1]);
    }),
  );
  const out: TcpConnection[] = [];
  for (const table of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const [local, remote, inode] = [cols[1], cols[2], cols[9]];
      if (!local || !remote || !inode || !inodes.has(inode)) continue;
      out.push({ localPort: parseInt(local.split(':')[1] ?? '0', 16), remotePort: parseInt(remote.split(':')[1] ?? '0', 16) });
    }
  }
  return out;
}
