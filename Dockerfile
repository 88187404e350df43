# Spool production image.
#   docker build -t spool .
#   docker run -p 3000:3000 -v spool-data:/data spool
# Built on the official Bun image (Debian), which already has a non-root `bun` user.

FROM oven/bun:1.4-debian AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (the `bun` npm package is a devDependency: the image has Bun).
RUN bun install --production --no-save

FROM oven/bun:1.4-debian
# ffmpeg/ffprobe: ingest probing, faststart remux, thumbnails and HLS transcoding.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    DATA_DIR=/data \
    STATIC_DIR=/app/static

COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY scripts/build.ts ./scripts/
COPY drizzle ./drizzle
COPY fixtures ./fixtures
# The server runs from one bundle (dist/): less resident memory and shorter garbage
# collections than ~660 separate modules (scripts/build.ts says how much). src/ stays: the
# worker and the CLI run from it, and the bundle reads the player's and Swagger's assets there.
RUN bun scripts/build.ts

# The library (SQLite database and media) lives in a volume owned by the unprivileged user,
# and only that user may enter it (signed videos, uploads and secrets are inside).
RUN mkdir -p /data /app/static && chown -R bun:bun /data /app/static && chmod 700 /data
VOLUME ["/data"]
USER bun

EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
    CMD ["bun", "-e", "const r = await fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health'); process.exit(r.ok ? 0 : 1)"]

CMD ["bun", "dist/index.js"]
