'use strict';
// Reference server for bench/run.py: Node's `ws` package, a neutral peer not written in Python.
//
//   node bench/server.js --cert CERT.pem --key KEY.pem
//
// `ws` is resolved through NODE_PATH (run.py points it at bench/.cache/node/node_modules).
// Everything listens on 127.0.0.1 on ports chosen by the OS; once all listen, one JSON line
// {"ws": port, "wss": port, "tcp": port, "tls": port, "impl": "..."} is printed on stdout.
// The server exits when its standard input closes (i.e. when run.py goes away).
//
// WebSocket endpoints (ws:// and wss://, permessage-deflate OFF):
//   /echo                  every message is sent back with the same type.
//   /count[?n=N]           counts messages and payload bytes; replies one text message
//                          {"messages": M, "bytes": B} when it receives the text message
//                          "summary" (not counted) or after N messages; then starts again at 0.
//   /download[?n=N&size=S] every message received triggers N binary messages of S bytes;
//                          a text message "N S" overrides the query's N and S.
// Raw TCP / TLS (same behaviour without framing); newline-terminated commands, one at a time:
//   "echo"                 from then on every byte is sent back.
//   "count TOTAL"          reads TOTAL bytes, replies "OK <TOTAL>\n", then expects a command.
//   "download TOTAL CHUNK" sends TOTAL bytes (written CHUNK bytes at a time), then expects a
//                          command.

const fs = require('fs');
const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');
const crypto = require('crypto');

const WebSocket = require('ws');
const WebSocketServer = WebSocket.WebSocketServer || WebSocket.Server;

const HOST = '127.0.0.1';

function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const payloads = new Map();
function payload(size) {
  let buf = payloads.get(size);
  if (!buf) {
    buf = crypto.randomBytes(size);
    payloads.set(size, buf);
  }
  return buf;
}

function intParam(value, dflt) {
  const n = parseInt(value, 10);
  return Number.isFinite(n) && n >= 0 ? n : dflt;
}

// Messages produced while handling one chunk of input are coalesced into one write: cork the
// socket on the first send of the tick and uncork on the next tick. This keeps the server
// from being the bottleneck for small messages; it costs nothing in latency.
function batcher(sock) {
  let corked = false;
  return function batch() {
    if (corked || !sock || typeof sock.cork !== "function") return;
    corked = true;
    sock.cork();
    process.nextTick(() => {
      corked = false;
      sock.uncork();
    });
  };
}

function onWebSocket(ws, req) {
  const url = new URL(req.url, 'http://localhost');
  const batch = batcher(ws._socket);
  ws.on('error', () => {});
  switch (url.pathname) {
    case '/echo':
      ws.on('message', (data, isBinary) => {
        batch();
        ws.send(data, { binary: isBinary });
      });
      break;
    case '/count': {
      const limit = intParam(url.searchParams.get('n'), 0);
      let messages = 0;
      let bytes = 0;
      const reply = () => {
        ws.send(JSON.stringify({ messages, bytes }));
        messages = 0;
        bytes = 0;
      };
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.length === 7 && data.toString() === 'summary') {
          reply();
          return;
        }
        messages += 1;
        bytes += data.length;
        if (limit && messages >= limit) reply();
      });
      break;
    }
    case '/download': {
      const dn = intParam(url.searchParams.get('n'), 64);
      const ds = intParam(url.searchParams.get('size'), 1 << 20);
      ws.on('message', (data, isBinary) => {
        let n = dn;
        let size = ds;
        if (!isBinary) {
          const m = /^(\d+) (\d+)$/.exec(data.toString());
          if (m) {
            n = parseInt(m[1], 10);
            size = parseInt(m[2], 10);
          }
        }
        const buf = payload(size);
        batch();
        for (let i = 0; i < n; i++) ws.send(buf, { binary: true });
      });
      break;
    }
    default:
      ws.close(4404, 'unknown path');
  }
}

function onRaw(sock) {
  sock.setNoDelay(true);
  sock.on('error', () => {});
  let pending = Buffer.alloc(0); // bytes of an incomplete command line
  let mode = 'command';
  let remaining = 0; // bytes still to count in "count" mode
  let total = 0;

  function download(totalBytes, chunk) {
    chunk = Math.max(1, chunk);
    const buf = payload(Math.min(chunk, totalBytes) || 1);
    sock.cork();
    let left = totalBytes;
    while (left > 0) {
      const n = Math.min(left, buf.length);
      sock.write(n === buf.length ? buf : buf.subarray(0, n));
      left -= n;
    }
    process.nextTick(() => sock.uncork());
  }

  function feed(data) {
    while (data.length) {
      if (mode === 'echo') {
        sock.write(data);
        return;
      }
      if (mode === 'count') {
        const n = Math.min(remaining, data.length);
        remaining -= n;
        data = data.subarray(n);
        if (remaining === 0) {
          sock.write(`OK ${total}\n`);
          mode = 'command';
        }
        continue;
      }
      // command mode
      const nl = data.indexOf(10);
      if (nl < 0) {
        pending = Buffer.concat([pending, data]);
        if (pending.length > 1024) sock.destroy();
        return;
      }
      const line = Buffer.concat([pending, data.subarray(0, nl)]).toString().trim();
      pending = Buffer.alloc(0);
      data = data.subarray(nl + 1);
      const words = line.split(/\s+/);
      if (words[0] === 'echo') {
        mode = 'echo';
      } else if (words[0] === 'count') {
        total = remaining = intParam(words[1], 0);
        if (remaining === 0) sock.write('OK 0\n');
        else mode = 'count';
      } else if (words[0] === 'download') {
        download(intParam(words[1], 0), intParam(words[2], 65536));
      } else {
        sock.destroy();
        return;
      }
    }
  }
  sock.on('data', feed);
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve(server.address().port));
  });
}

async function main() {
  const certFile = arg('--cert');
  const keyFile = arg('--key');
  const wsOptions = { perMessageDeflate: false, clientTracking: false, maxPayload: 256 << 20 };

  const plain = http.createServer((req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain' });
    res.end('WebSocket only\n');
  });
  new WebSocketServer({ server: plain, ...wsOptions }).on('connection', onWebSocket);
  const tcp = net.createServer(onRaw);
  const ports = { ws: await listen(plain), tcp: await listen(tcp), wss: null, tls: null };

  if (certFile && keyFile) {
    const creds = { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
    const secure = https.createServer(creds, (req, res) => {
      res.writeHead(426);
      res.end();
    });
    new WebSocketServer({ server: secure, ...wsOptions }).on('connection', onWebSocket);
    const tlsRaw = tls.createServer(creds, onRaw);
    ports.wss = await listen(secure);
    ports.tls = await listen(tlsRaw);
  }

  let version = '?';
  try {
    version = require('ws/package.json').version;
  } catch (e) {}
  let accel = false;
  try {
    require.resolve('bufferutil');
    accel = true;
  } catch (e) {}
  ports.impl = `node ${process.version}, ws ${version}${accel ? ' + bufferutil' : ''}`;
  process.stdout.write(JSON.stringify(ports) + '\n');

  process.stdin.on('data', () => {});
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
