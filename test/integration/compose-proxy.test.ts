/**
 * compose.yaml's nginx, run for real (Debian's nginx) in front of a Spool with TRUST_PROXY=1, as
 * the compose file runs them: its server block is taken from the file, with only the upstream's
 * address and the listening port changed. A browser at `http://host:port/` signs in and changes
 * the library through it, and tus's Location names the address the client used.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, ROOT } from "../helpers/process.ts";
import { AUTH, TEST_API_KEY, startTestSpool, type TestSpool } from "../helpers/spool.ts";

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((path) => Bun.file(path).size > 0);

let spool: TestSpool;
let nginx: ReturnType<typeof Bun.spawn> | undefined;
let prefix: string;
let proxy: string;

/** The compose file's nginx configuration (`configs.nginx.content`), as nginx reads it. */
async function composeNginx(upstream: string, port: number): Promise<string> {
  const compose = Bun.YAML.parse(await readFile(join(ROOT, "compose.yaml"), "utf8")) as { configs: { nginx: { content: string } } };
  const content = compose.configs.nginx.content
    .replaceAll("$$", "$") // compose's escape for a literal $
    .replaceAll("server spool:3000;", `server ${upstream};`)
    .replace("listen 80;", `listen 127.0.0.1:${port};`);
  expect(content).toContain(`server ${upstream};`);
  expect(content).toContain(`listen 127.0.0.1:${port};`);
  const temp = (name: string) => `${name}_temp_path ${prefix}/tmp/${name};`;
  return `pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  ${["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(temp).join("\n  ")}
${content}
}
`;
}

beforeAll(async () => {
  if (!NGINX) throw new Error("nginx not found (apt-get install nginx-core): this test runs the compose file's proxy");
  spool = await startTestSpool({ trustProxy: true });
  prefix = await mkdtemp(join(tmpdir(), "spool-compose-nginx-"));
  await mkdir(join(prefix, "tmp"));
  // nginx's workers run as nobody when started by root.
  await chmod(prefix, 0o755);
  const port = freePort();
  await writeFile(join(prefix, "nginx.conf"), await composeNginx(`127.0.0.1:${spool.port}`, port));
  nginx = Bun.spawn([NGINX, "-p", prefix, "-e", join(prefix, "error.log"), "-c", join(prefix, "nginx.conf"), "-g", "daemon off;"], { stdout: "ignore", stderr: "pipe" });
  proxy = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if ((await fetch(`${proxy}/health`).then((r) => r.status, () => 0)) === 200) break;
    if (i > 300 || nginx.exitCode !== null) throw new Error(`nginx did not start: ${await new Response(nginx.stderr as ReadableStream).text()} ${await readFile(join(prefix, "error.log"), "utf8").catch(() => "")}`);
    await Bun.sleep(20);
  }
}, 30_000);

afterAll(async () => {
  nginx?.kill("SIGTERM");
  await nginx?.exited;
  await spool?.stop();
  if (prefix) await rm(prefix, { recursive: true, force: true });
});

test("a browser at the proxy's host:port signs in and changes the library through it (the Origin check sees that address)", async () => {
  const page = { origin: proxy, "content-type": "application/json" };
  const signIn = await fetch(`${proxy}/api/session`, { method: "POST", headers: page, body: JSON.stringify({ key: TEST_API_KEY }) });
  expect(signIn.status).toBe(204);
  const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
  const renamed = await fetch(`${proxy}/api/videos/demo`, { method: "PATCH", headers: { ...page, cookie }, body: JSON.stringify({ title: "Renamed through the proxy" }) });
  expect(renamed.status).toBe(200);
  expect(((await renamed.json()) as { title: string }).title).toBe("Renamed through the proxy");
  // Another site's page is still refused.
  const foreign = await fetch(`${proxy}/api/videos/demo`, { method: "PATCH", headers: { ...page, origin: "http://evil.example", cookie }, body: "{}" });
  expect(foreign.status).toBe(403);
});

test("ranges come through byte for byte, and a tus upload's Location names the proxy's address", async () => {
  const direct = await fetch(`${spool.url}/api/stream/demo`, { headers: { range: "bytes=100-1099" } });
  const proxied = await fetch(`${proxy}/api/stream/demo`, { headers: { range: "bytes=100-1099" } });
  expect(proxied.status).toBe(206);
  expect(proxied.headers.get("content-range")).toBe(direct.headers.get("content-range"));
  expect(Buffer.from(await proxied.arrayBuffer())).toEqual(Buffer.from(await direct.arrayBuffer()));

  const created = await fetch(`${proxy}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "10" } });
  expect(created.status).toBe(201);
  const location = new URL(created.headers.get("location")!, proxy);
  expect(location.origin).toBe(proxy);
  const head = await fetch(location, { method: "HEAD", headers: { "tus-resumable": "1.0.0" } });
  expect([head.status, head.headers.get("upload-offset")]).toEqual([200, "0"]);
});
