// netns.mjs — what the enforcement tests that run in network namespaces
// (enforce_netns, enforce_monitor) share: a port-25 listener in the
// "internet" namespace and a persistent prober in the "tenant" namespace.
import { spawn } from 'node:child_process';
import readline from 'node:readline';

const listener = (banner) => `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 25))
s.listen(128)
print('ready', flush=True)
while True:
    c, a = s.accept()
    try:
        c.sendall(b'220 internet.test ESMTP ${banner}\\r\\n')
    finally:
        c.close()
`;

// A line "SRC DST" in, a JSON line out — so a probe costs a connect, not a
// process start.
const PROBER = `
import json, socket, sys, time
for line in sys.stdin:
    src, dst = line.split()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.bind((src, 0))
    t = time.monotonic()
    try:
        s.connect((dst, 25))
        banner = s.recv(200).decode(errors='replace').strip()
        r = {'result': 'connected', 'banner': banner}
    except ConnectionRefusedError:
        r = {'result': 'refused'}
    except socket.timeout:
        r = {'result': 'timeout'}
    except OSError as e:
        r = {'result': 'error', 'error': str(e)}
    finally:
        s.close()
    r['ms'] = round((time.monotonic() - t) * 1000, 1)
    print(json.dumps(r), flush=True)
`;

/**
 * Starts a listener on TCP 25 in namespace ns (python py) that greets with
 * banner; resolves once it listens.  The process is pushed to helpers.
 */
export async function startListener(py, ns, banner, helpers) {
	const p = spawn('ip', ['netns', 'exec', ns, py, '-c', listener(banner)], { stdio: ['ignore', 'pipe', 'pipe'] });
	helpers.push(p);
	let err = '';
	p.stderr.on('data', (d) => { err += d; });
	await new Promise((resolve, reject) => {
		const t = setTimeout(() => reject(new Error(`listener did not start: ${err}`)), 10000);
		p.stdout.once('data', () => { clearTimeout(t); resolve(); });
		p.once('exit', (c) => { clearTimeout(t); reject(new Error(`listener exited ${c}: ${err}`)); });
	});
}

/**
 * Starts the prober in namespace ns; returns probe(src) → a promise of
 * {result: connected|refused|timeout|error, banner?, ms} for a connection
 * from src to dst:25.  The process is pushed to helpers.
 */
export function startProber(py, ns, dst, helpers) {
	const p = spawn('ip', ['netns', 'exec', ns, py, '-u', '-c', PROBER], { stdio: ['pipe', 'pipe', 'inherit'] });
	helpers.push(p);
	const rl = readline.createInterface({ input: p.stdout });
	const waiting = [];
	rl.on('line', (line) => waiting.shift()?.(JSON.parse(line)));
	return (src) => new Promise((resolve) => {
		waiting.push(resolve);
		p.stdin.write(`${src} ${dst}\n`);
	});
}
