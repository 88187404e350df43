"""The FastAPI `StreamingResponse` design, reimplemented as a benchmark peer.

An endpoint that parses a single `bytes=a-b` Range with a regex and streams the file with a
Python generator yielding 1 MiB chunks (206 + Content-Range; 200 without a Range header). No
validators (no ETag / Last-Modified / 304), as in the original design.

Runs on Debian's python3-fastapi + python3-uvicorn: one process, one event loop.
Env: PORT, HOST (default 127.0.0.1), BENCH_FILES = JSON {"key": "/abs/path"}.
"""
import json
import os
import re

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse

CHUNK = 1024 * 1024
RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)")
FILES = json.loads(os.environ.get("BENCH_FILES", "{}"))

app = FastAPI()


@app.get("/health")
async def health():
    return JSONResponse({"ok": True})


@app.get("/video/{key}")
async def stream(key: str, range: str | None = Header(default=None)):
    path = FILES.get(key)
    if path is None:
        raise HTTPException(status_code=404)
    size = os.path.getsize(path)
    start, end = 0, size - 1
    status = 200
    if range:
        m = RANGE_RE.match(range)
        if m:
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else size - 1
            end = min(end, size - 1)
            status = 206
        if start > end:
            raise HTTPException(status_code=416)

    def chunks():
        with open(path, "rb") as f:
            f.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                data = f.read(min(CHUNK, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data

    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(chunks(), status_code=status, headers=headers, media_type="video/mp4")


if __name__ == "__main__":
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        log_level="warning",
        access_log=False,
    )
