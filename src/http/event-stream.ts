/** The response of a server-sent event stream: never cached, never buffered by a proxy. */
export function eventStreamResponse(stream: ReadableStream<Uint8Array>): Response {
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      // nginx would otherwise hold events back in its buffer.
      "x-accel-buffering": "no",
      "x-content-type-options": "nosniff",
    },
  });
}

/** How often a long-lived stream asks whether its client may still have it. */
export const RECHECK_MS = 15_000;

/**
 * `stream`, ended as soon as `allowed` says no (asked every `everyMs`): an event stream outlives
 * the check made when it opened, and a session signed out or expired must not keep receiving.
 * A check that fails (the database is away) ends it too: the client reconnects and is asked anew.
 */
export function whileAllowed(stream: ReadableStream<Uint8Array>, allowed: () => Promise<boolean>, everyMs = RECHECK_MS): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  let timer: ReturnType<typeof setInterval> | undefined;
  let ended = false;
  const end = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    if (ended) return;
    ended = true;
    clearInterval(timer);
    reader.cancel().catch(() => {});
    try {
      controller.close();
    } catch {
      // already closed
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        timer = setInterval(() => {
          allowed().then(
            (yes) => yes || end(controller),
            () => end(controller),
          );
        }, everyMs);
      },
      async pull(controller) {
        const next = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (ended) return;
        if (next.done) end(controller);
        else controller.enqueue(next.value);
      },
      cancel(reason) {
        ended = true;
        clearInterval(timer);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
